// The chat page: streams /v1/chat/completions over SSE (fetch and a
// ReadableStream), keeps conversations in localStorage, and renders
// answers with the text-node-only Markdown renderer.
import { render } from "/ui/markdown.js";
import { ApiError, askKey, authHeaders, errorFrom, getJSON, make, setKey } from "/ui/common.js";

const STORE = "aiassist.conversations";
const MAX_CONVERSATIONS = 50;

const $ = (id) => document.getElementById(id);
const ui = {
	model: $("model"), system: $("system"), temperature: $("temperature"), maxTokens: $("max-tokens"),
	messages: $("messages"), prompt: $("prompt"), send: $("send"), stop: $("stop"),
	composer: $("composer"), notice: $("notice"), list: $("conv-list"), newChat: $("new-chat"), forgetKey: $("forget-key"),
};

let conversations = load();
let current = null; // the conversation shown
let inflight = null; // {controller} of the streaming answer
let blockedUntil = 0; // Retry-After of the last 429, in ms since the epoch

function load() {
	try {
		const v = JSON.parse(localStorage.getItem(STORE) || "[]");
		return Array.isArray(v) ? v : [];
	} catch (_) {
		return [];
	}
}

function save() {
	conversations.sort((a, b) => b.updated - a.updated);
	conversations = conversations.slice(0, MAX_CONVERSATIONS);
	try {
		localStorage.setItem(STORE, JSON.stringify(conversations));
	} catch (_) { /* full: keep going in memory */ }
}

function newConversation() {
	const c = { id: String(Date.now()) + Math.random().toString(16).slice(2, 6), title: "New chat", messages: [], updated: Date.now() };
	conversations.unshift(c);
	return c;
}

function notice(msg, kind = "error") {
	ui.notice.textContent = msg || "";
	ui.notice.className = "notice " + kind;
}

function renderList() {
	ui.list.replaceChildren();
	for (const c of conversations) {
		const open = make("button", { type: "button", class: "open", text: c.title || "New chat" });
		open.addEventListener("click", () => show(c));
		const del = make("button", { type: "button", class: "small", "aria-label": "Delete conversation " + (c.title || ""), text: "×" });
		del.addEventListener("click", () => {
			conversations = conversations.filter((x) => x !== c);
			if (current === c) current = conversations[0] || newConversation();
			save();
			show(current);
		});
		const li = make("li", {}, open, del);
		if (c === current) li.setAttribute("aria-current", "true");
		ui.list.append(li);
	}
}

function show(c) {
	if (inflight) inflight.controller.abort();
	current = c;
	ui.system.value = c.system || "";
	if (c.model && [...ui.model.options].some((o) => o.value === c.model)) ui.model.value = c.model;
	ui.messages.replaceChildren();
	c.messages.forEach((m, i) => ui.messages.append(messageView(m, i === c.messages.length - 1)));
	renderList();
}

function copyButton(getText) {
	const b = make("button", { type: "button", class: "small copy", text: "Copy" });
	b.addEventListener("click", async () => {
		try {
			await navigator.clipboard.writeText(getText());
			b.textContent = "Copied";
		} catch (_) {
			b.textContent = "Copy failed";
		}
		setTimeout(() => { b.textContent = "Copy"; }, 1500);
	});
	return b;
}

// messageView is one message; the last assistant answer gets Regenerate.
function messageView(m, last) {
	const li = make("li", { class: "msg " + (m.error ? "error" : m.role) });
	li.append(make("div", { class: "role", text: m.error ? "error" : m.role }));
	const content = make("div", { class: "content" });
	if (m.role === "assistant" && !m.error) content.append(render(m.content));
	else content.append(make("p", { text: m.content }));
	li.append(content);
	const meta = make("div", { class: "meta" });
	if (m.stats) meta.append(make("span", { class: "stats", text: statsText(m.stats) }));
	if (!m.error) meta.append(copyButton(() => m.content));
	if (last && m.role === "assistant") {
		const regen = make("button", { type: "button", class: "small regenerate", text: "Regenerate" });
		regen.addEventListener("click", regenerate);
		meta.append(regen);
	}
	li.append(meta);
	li._content = content;
	li._meta = meta;
	return li;
}

function statsText(s) {
	const parts = [];
	if (s.ttft != null) parts.push("first token " + (s.ttft / 1000).toFixed(2) + " s");
	if (s.tokens != null && s.tps != null) parts.push(s.tokens + " tokens, " + s.tps.toFixed(1) + " tokens/s");
	if (s.finish) parts.push(s.finish);
	return parts.join(" · ");
}

async function loadModels() {
	try {
		const list = await getJSON("/v1/models");
		ui.model.replaceChildren();
		for (const m of list.data || []) ui.model.append(make("option", { value: m.id, text: m.id }));
		if (!ui.model.options.length) notice("The server serves no text model.");
		return true;
	} catch (e) {
		notice(e.message);
		return false;
	}
}

function busy(on) {
	ui.send.disabled = on;
	ui.stop.disabled = !on;
}

async function send(ev) {
	ev.preventDefault();
	const text = ui.prompt.value.trim();
	if (!text || inflight) return;
	if (Date.now() < blockedUntil) {
		notice("Rate limit reached; you can send again in " + Math.ceil((blockedUntil - Date.now()) / 1000) + " s.");
		return;
	}
	ui.prompt.value = "";
	current.messages.push({ role: "user", content: text });
	if (current.title === "New chat") current.title = text.slice(0, 40);
	await answer();
}

async function regenerate() {
	if (inflight) return;
	while (current.messages.length && current.messages[current.messages.length - 1].role !== "user") current.messages.pop();
	if (!current.messages.length) return;
	await answer();
}

// answer streams the model's reply to the conversation so far.
async function answer() {
	current.system = ui.system.value;
	current.model = ui.model.value;
	current.updated = Date.now();
	save();
	show(current);
	notice("");
	const msgs = [];
	if (current.system.trim()) msgs.push({ role: "system", content: current.system });
	for (const m of current.messages) if (!m.error) msgs.push({ role: m.role, content: m.content });
	const reply = { role: "assistant", content: "" };
	const view = messageView(reply, false);
	ui.messages.append(view);
	const controller = new AbortController();
	inflight = { controller };
	busy(true);
	const started = performance.now();
	let first = null, tokens = 0, finish = "", usage = null;
	let scheduled = false;
	const paint = () => {
		scheduled = false;
		view._content.replaceChildren(render(reply.content));
	};
	try {
		const body = {
			model: current.model || undefined, messages: msgs, stream: true, stream_options: { include_usage: true },
			temperature: Number(ui.temperature.value), max_tokens: parseInt(ui.maxTokens.value, 10) || undefined,
		};
		let res;
		for (;;) {
			res = await fetch("/v1/chat/completions", {
				method: "POST", headers: authHeaders({ "Content-Type": "application/json" }), body: JSON.stringify(body), signal: controller.signal,
			});
			if (res.status === 401) {
				await askKey((await errorFrom(res)).message);
				continue;
			}
			break;
		}
		if (!res.ok) throw await errorFrom(res);
		const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
		let buf = "";
		for (;;) {
			const { value, done } = await reader.read();
			if (done) break;
			buf += value;
			let at;
			while ((at = buf.indexOf("\n\n")) >= 0) {
				const event = buf.slice(0, at);
				buf = buf.slice(at + 2);
				for (const line of event.split("\n")) {
					if (!line.startsWith("data:")) continue;
					const data = line.slice(5).trim();
					if (data === "[DONE]") continue;
					const chunk = JSON.parse(data);
					if (chunk.error) throw new ApiError(0, chunk.error.code, "The server stopped the answer: " + chunk.error.message, 0);
					if (chunk.usage) usage = chunk.usage;
					for (const ch of chunk.choices || []) {
						const piece = ch.delta && ch.delta.content;
						if (piece) {
							if (first === null) first = performance.now();
							tokens++;
							reply.content += piece;
							if (!scheduled) {
								scheduled = true;
								requestAnimationFrame(paint);
							}
						}
						if (ch.finish_reason) finish = ch.finish_reason;
					}
				}
			}
		}
	} catch (e) {
		if (e.name === "AbortError") {
			finish = "stopped";
		} else {
			if (e.status === 429 && e.retryAfter) blockedUntil = Date.now() + e.retryAfter * 1000;
			if (!reply.content) {
				reply.error = true;
				reply.content = e.message;
			}
			notice(e.message);
		}
	} finally {
		inflight = null;
		busy(false);
	}
	const end = performance.now();
	const n = usage && usage.completion_tokens ? usage.completion_tokens : tokens;
	if (first !== null) {
		// The decode rate after the first token; when the answer came in
		// one burst, the rate over the whole request instead.
		const decode = (end - first) / 1000;
		const tps = n > 1 && decode >= 0.05 ? (n - 1) / decode : n / Math.max((end - started) / 1000, 1e-3);
		reply.stats = { ttft: first - started, tokens: n, tps, finish };
	} else if (finish) {
		reply.stats = { finish };
	}
	if (reply.content || reply.error) current.messages.push(reply);
	current.updated = Date.now();
	save();
	show(current);
	ui.prompt.focus();
}

ui.composer.addEventListener("submit", send);
ui.prompt.addEventListener("keydown", (ev) => {
	if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
		ev.preventDefault();
		ui.composer.requestSubmit();
	}
});
ui.stop.addEventListener("click", () => inflight && inflight.controller.abort());
ui.newChat.addEventListener("click", () => {
	show(newConversation());
	ui.prompt.focus();
});
ui.forgetKey.addEventListener("click", () => {
	setKey("");
	notice("The key is forgotten; the next request asks for one.", "info");
});
ui.model.addEventListener("change", () => { if (current) current.model = ui.model.value; });

(async () => {
	current = conversations[0] || newConversation();
	await loadModels();
	show(current);
	ui.prompt.focus();
})();
