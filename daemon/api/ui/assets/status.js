// The status page: reads /status.json every few seconds and draws the
// request rate, error rate and p95 latency as SVG sparklines computed here
// from successive reads of the cumulative counts (drawn by hand: a
// polyline needs no chart library).
import { getJSON, make } from "/ui/common.js";

const INTERVAL_MS = 2000;
const POINTS = 60;

const $ = (id) => document.getElementById(id);
const samples = []; // {t, requests, errors, counts}
const series = { rate: [], errors: [], p95: [] };

function set(id, v) { $(id).textContent = v; }

function duration(s) {
	s = Math.floor(s);
	const d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
	if (d) return d + "d " + h + "h";
	if (h) return h + "h " + m + "m";
	if (m) return m + "m " + s % 60 + "s";
	return s + "s";
}

function badge(el, ok, yes, no) {
	el.textContent = ok ? yes : no;
	el.className = "badge " + (ok ? "ok" : "bad");
}

// quantile is histogram_quantile over the increase of cumulative bucket
// counts between two reads: linear within the bucket it falls in.
export function quantile(q, bounds, counts) {
	const total = counts[counts.length - 1];
	if (!total) return null;
	const rank = q * total;
	let prevBound = 0, prevCount = 0;
	for (let i = 0; i < bounds.length; i++) {
		if (counts[i] >= rank) {
			const inBucket = counts[i] - prevCount;
			return prevBound + (bounds[i] - prevBound) * (inBucket ? (rank - prevCount) / inBucket : 1);
		}
		prevBound = bounds[i];
		prevCount = counts[i];
	}
	return bounds[bounds.length - 1]; // in the open bucket: as Prometheus does
}

function spark(id, values) {
	const svg = $(id);
	const line = svg.querySelector("polyline");
	const vs = values.map((v) => (v == null ? 0 : v));
	const maxV = Math.max(...vs, 1e-9);
	const step = 100 / (POINTS - 1);
	const off = POINTS - vs.length;
	line.setAttribute("points", vs.map((v, i) => ((off + i) * step).toFixed(2) + "," + (38 - 36 * v / maxV).toFixed(2)).join(" "));
}

function push(name, v) {
	series[name].push(v);
	if (series[name].length > POINTS) series[name].shift();
}

function traffic(doc) {
	const tr = doc.traffic || {};
	const now = { t: Date.parse(doc.time) / 1000, requests: tr.requests || 0, errors: tr.server_errors || 0, counts: tr.latency_counts || [] };
	const prev = samples[samples.length - 1];
	samples.push(now);
	if (samples.length > POINTS + 1) samples.shift();
	if (!prev || now.t <= prev.t || now.requests < prev.requests) return; // first read, or the daemon restarted
	const dt = now.t - prev.t;
	const dn = now.requests - prev.requests;
	const rate = dn / dt;
	const errRate = dn ? (now.errors - prev.errors) / dn : 0;
	const delta = now.counts.map((c, i) => c - (prev.counts[i] || 0));
	const p95 = quantile(0.95, tr.latency_buckets || [], delta);
	push("rate", rate);
	push("errors", errRate);
	push("p95", p95);
	set("v-rate", rate.toFixed(2));
	set("v-errors", (errRate * 100).toFixed(1) + " %");
	set("v-p95", p95 == null ? "–" : p95 < 1 ? (p95 * 1000).toFixed(0) + " ms" : p95.toFixed(2) + " s");
	spark("s-rate", series.rate);
	spark("s-errors", series.errors);
	spark("s-p95", series.p95);
}

function row(...cells) {
	return make("tr", {}, ...cells.map((c) => (c instanceof Node ? c : make("td", { text: String(c) }))));
}

function num(v) { return make("td", { class: "num", text: String(v) }); }

function draw(doc) {
	badge($("health"), doc.live && doc.ready, "healthy", doc.live ? "not ready" : "down");
	badge($("ready"), doc.ready, "yes", "no");
	set("version", doc.version || "unknown");
	set("onnxruntime", doc.onnxruntime || "unknown");
	set("uptime", duration(doc.uptime_seconds || 0));
	set("generation", String(doc.generation));
	const r = doc.last_reload || {};
	set("reload-time", r.time ? new Date(r.time).toLocaleString() : "–");
	set("reload-source", r.source || "–");
	const res = $("reload-result");
	res.textContent = r.result || "–";
	res.className = "badge " + (r.result === "failure" ? "bad" : "ok");
	set("reload-error", r.error || "");

	const alerts = $("alerts");
	alerts.replaceChildren();
	for (const a of doc.alerts || []) {
		const labels = Object.entries(a.labels || {}).map(([k, v]) => k + "=" + v).join(", ");
		const state = make("td", {}, make("span", { class: "badge " + (a.state === "firing" ? "bad" : a.state === "pending" ? "warn" : "ok"), text: a.state }));
		alerts.append(row(make("td", { text: a.name, title: a.summary || "" }), state, labels, num(Number(a.value).toPrecision(3)), new Date(a.fired_at || a.active_at).toLocaleTimeString()));
	}
	if (!alerts.children.length) alerts.append(row(make("td", { colspan: "5", text: "No alert is pending or firing." })));

	const models = $("models");
	models.replaceChildren();
	for (const m of doc.models || []) {
		models.append(row(make("td", { text: m.name, title: m.path }), m.kind, num(m.instances), num(m.queue_depth),
			num(m.active_sequences == null ? "–" : m.active_sequences + " / " + m.max_sequences), num(m.load_seconds.toFixed(2) + " s"), m.quantization));
	}

	const ls = $("listeners");
	ls.replaceChildren(...(doc.listeners || []).map((l) => make("li", { text: l.address + (l.tls ? " (TLS)" : " (plain HTTP)") })));
	const keys = $("keys");
	keys.replaceChildren(...(doc.keys_expiring || []).map((k) => make("li", { text: k.name + " — " + new Date(k.not_after).toLocaleString() })));
	if (!keys.children.length) keys.append(make("li", { text: "None within the alert window." }));
	traffic(doc);
}

async function tick() {
	try {
		draw(await getJSON("/status.json"));
		$("notice").textContent = "";
	} catch (e) {
		$("notice").textContent = "Cannot read the status: " + e.message;
		$("notice").className = "notice error";
		badge($("health"), false, "", "unreachable");
	}
	setTimeout(tick, INTERVAL_MS);
}

tick();
