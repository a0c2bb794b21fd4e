// A small Markdown renderer that builds DOM nodes and never parses HTML:
// every piece of model output becomes a text node (textContent), and the
// only elements are the ones created here. So "<img onerror=…>" or
// "<script>" in an answer shows as those characters and cannot run —
// safe by construction, rather than by sanitising markup after the fact.
// Links keep only http, https and mailto targets.
//
// Supported: paragraphs, headings (#…######), fenced code blocks (```),
// block quotes (>), bullet and numbered lists, horizontal rules, and
// inline `code`, **bold**, *italic* / _italic_, ~~strike~~ and
// [text](url).

const SAFE_URL = /^(https?:|mailto:)/i;

export function render(text, doc = document) {
	const frag = doc.createDocumentFragment();
	const lines = String(text).replace(/\r\n?/g, "\n").split("\n");
	let i = 0;
	const el = (tag, cls) => {
		const e = doc.createElement(tag);
		if (cls) e.className = cls;
		return e;
	};
	while (i < lines.length) {
		const line = lines[i];
		if (/^\s*$/.test(line)) { i++; continue; }
		const fence = line.match(/^\s*(```+|~~~+)\s*([\w+#.-]*)\s*$/);
		if (fence) {
			const close = fence[1];
			const body = [];
			i++;
			while (i < lines.length && !lines[i].trim().startsWith(close)) body.push(lines[i++]);
			i++; // the closing fence, or the end of an unfinished block
			const pre = el("pre");
			const code = el("code");
			if (fence[2]) code.dataset.lang = fence[2];
			code.textContent = body.join("\n");
			pre.appendChild(code);
			frag.appendChild(pre);
			continue;
		}
		const h = line.match(/^(#{1,6})\s+(.*)$/);
		if (h) {
			const e = el("h" + Math.min(6, h[1].length + 2)); // h3..h6: the page owns h1/h2
			inline(e, h[2], doc);
			frag.appendChild(e);
			i++;
			continue;
		}
		if (/^\s*([-*_])(\s*\1){2,}\s*$/.test(line)) {
			frag.appendChild(el("hr"));
			i++;
			continue;
		}
		if (/^\s*>/.test(line)) {
			const body = [];
			while (i < lines.length && /^\s*>/.test(lines[i])) body.push(lines[i++].replace(/^\s*>\s?/, ""));
			const q = el("blockquote");
			q.appendChild(render(body.join("\n"), doc));
			frag.appendChild(q);
			continue;
		}
		const item = /^\s*(?:([-*+])|(\d{1,9})[.)])\s+(.*)$/;
		if (item.test(line)) {
			const ordered = !!line.match(item)[2];
			const list = el(ordered ? "ol" : "ul");
			if (ordered) {
				const start = parseInt(line.match(item)[2], 10);
				if (start !== 1) list.start = start;
			}
			while (i < lines.length) {
				const m = lines[i].match(item);
				if (!m || !!m[2] !== ordered) break;
				const parts = [m[3]];
				i++;
				// Indented lines continue the item.
				while (i < lines.length && /^\s{2,}\S/.test(lines[i]) && !item.test(lines[i])) parts.push(lines[i++].trim());
				const li = el("li");
				inline(li, parts.join(" "), doc);
				list.appendChild(li);
			}
			frag.appendChild(list);
			continue;
		}
		const para = [];
		while (i < lines.length && !/^\s*$/.test(lines[i]) && !/^\s*(```|~~~|#{1,6}\s|>)/.test(lines[i]) && !item.test(lines[i])) {
			para.push(lines[i++]);
		}
		if (para.length === 0) { // a line no block takes: keep it as text
			para.push(lines[i++]);
		}
		const p = el("p");
		para.forEach((l, k) => {
			if (k > 0) p.appendChild(doc.createElement("br"));
			inline(p, l, doc);
		});
		frag.appendChild(p);
	}
	return frag;
}

// inline appends text with inline marks to parent.
function inline(parent, text, doc) {
	const pattern = /(`+)([\s\S]*?[^`])\1(?!`)|\*\*([^*]+)\*\*|__([^_]+)__|~~([^~]+)~~|\*([^*\s][^*]*)\*|\b_([^_\s][^_]*)_\b|\[([^\]]+)\]\(([^)\s]+)\)/g;
	let last = 0;
	let m;
	while ((m = pattern.exec(text)) !== null) {
		if (m.index > last) parent.appendChild(doc.createTextNode(text.slice(last, m.index)));
		last = pattern.lastIndex;
		if (m[1]) {
			const c = doc.createElement("code");
			c.textContent = m[2];
			parent.appendChild(c);
		} else if (m[3] || m[4]) {
			const b = doc.createElement("strong");
			inline(b, m[3] || m[4], doc);
			parent.appendChild(b);
		} else if (m[5]) {
			const s = doc.createElement("del");
			inline(s, m[5], doc);
			parent.appendChild(s);
		} else if (m[6] || m[7]) {
			const e = doc.createElement("em");
			inline(e, m[6] || m[7], doc);
			parent.appendChild(e);
		} else if (m[8]) {
			if (SAFE_URL.test(m[9])) {
				const a = doc.createElement("a");
				a.href = m[9];
				a.rel = "noopener noreferrer nofollow";
				a.target = "_blank";
				a.textContent = m[8];
				parent.appendChild(a);
			} else {
				parent.appendChild(doc.createTextNode(m[0]));
			}
		}
	}
	if (last < text.length) parent.appendChild(doc.createTextNode(text.slice(last)));
}
