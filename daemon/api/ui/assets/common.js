// What both pages share: the API key (kept in sessionStorage, so it
// leaves with the tab), calls to the API, and readable error messages.

// The status page keeps its own key (one with scope "admin"), so an
// operator's key and a chat key in one browser do not replace each other.
const KEY = location.pathname.startsWith("/status") ? "aiassist.admin-key" : "aiassist.key";

export function getKey() {
	return sessionStorage.getItem(KEY) || "";
}

export function setKey(k) {
	if (k) sessionStorage.setItem(KEY, k);
	else sessionStorage.removeItem(KEY);
}

export function authHeaders(extra = {}) {
	const h = { ...extra };
	const k = getKey();
	if (k) h["Authorization"] = "Bearer " + k;
	return h;
}

// ApiError is a refused or failed call, with the server's message.
export class ApiError extends Error {
	constructor(status, code, message, retryAfter) {
		super(message);
		this.status = status;
		this.code = code;
		this.retryAfter = retryAfter; // seconds, or 0
	}
}

// errorFrom turns a non-2xx response into an ApiError with a message a
// person can act on.
export async function errorFrom(res) {
	let code = "", detail = "";
	try {
		const body = await res.json();
		if (body && body.error) {
			code = body.error.code || "";
			detail = body.error.message || "";
		}
	} catch (_) { /* not JSON */ }
	const retry = parseInt(res.headers.get("Retry-After") || "0", 10) || 0;
	let msg;
	switch (res.status) {
	case 401:
		msg = "The server did not accept the API key" + (getKey() ? "" : " (none given)") + ". Enter a valid key.";
		break;
	case 403:
		msg = "This key may not do that: " + (detail || "permission denied") + ".";
		break;
	case 429:
		msg = "Rate limit reached" + (retry ? "; you can send again in " + retry + " s." : "; wait a moment and retry.");
		break;
	case 503:
		msg = "The server is busy" + (retry ? "; retry in " + retry + " s." : "; retry shortly.");
		break;
	default:
		msg = "Request failed (" + res.status + ")" + (detail ? ": " + detail : ".");
	}
	return new ApiError(res.status, code, msg, retry);
}

// askKey shows the key dialog and resolves once a key is entered.
export function askKey(message) {
	const dialog = document.getElementById("key-dialog");
	const input = document.getElementById("key-input");
	const note = document.getElementById("key-message");
	note.textContent = message || "This server needs an API key.";
	input.value = "";
	return new Promise((resolve) => {
		const form = dialog.querySelector("form");
		const done = (ev) => {
			ev.preventDefault();
			const k = input.value.trim();
			if (!k) {
				input.focus();
				return;
			}
			form.removeEventListener("submit", done);
			setKey(k);
			dialog.close();
			resolve(k);
		};
		form.addEventListener("submit", done);
		if (!dialog.open) dialog.showModal();
		input.focus();
	});
}

// getJSON fetches path with the key, asking for one on 401.
export async function getJSON(path) {
	for (let attempt = 0; attempt < 5; attempt++) {
		const res = await fetch(path, { headers: authHeaders(), cache: "no-store" });
		if (res.ok) return res.json();
		const err = await errorFrom(res);
		if (res.status === 401 || res.status === 403 && err.code === "insufficient_scope") {
			await askKey(err.message);
			continue;
		}
		throw err;
	}
	throw new Error("giving up after repeated refusals");
}

export function text(el, s) {
	el.textContent = s;
	return el;
}

export function make(tag, attrs = {}, ...children) {
	const e = document.createElement(tag);
	for (const [k, v] of Object.entries(attrs)) {
		if (k === "class") e.className = v;
		else if (k === "text") e.textContent = v;
		else e.setAttribute(k, v);
	}
	for (const c of children) e.append(c);
	return e;
}
