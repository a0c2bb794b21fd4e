// Browser tests of the built-in pages in headless Debian Chromium, run by
// TestBrowser (daemon/ui_browser_test.go), which starts the daemons and
// passes their addresses in the environment:
//   OPEN_URL     a daemon serving tiny-llama without auth
//   AUTH_URL     a daemon whose inference needs an API key
//   GOOD_KEY     a key AUTH_URL accepts
//   ADMIN_KEY    a key of AUTH_URL with scope "admin"
//   CONFIG_PATH  the config file of OPEN_URL, edited to test reloads
//   GOOD_CONFIG, BAD_CONFIG  what to write there
//   SHOTS        the folder screenshots go to
// Each check prints "ok <name>" or throws; the exit status says it all.
import { chromium } from "playwright-core";
import { renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const env = (k) => {
	const v = process.env[k];
	if (!v) throw new Error("missing " + k);
	return v;
};
const OPEN = env("OPEN_URL"), AUTH = env("AUTH_URL"), KEY = env("GOOD_KEY"), ADMIN_KEY = env("ADMIN_KEY");
const CONFIG = env("CONFIG_PATH"), GOOD = env("GOOD_CONFIG"), BAD = env("BAD_CONFIG"), SHOTS = env("SHOTS");
const TIMEOUT = 30000;

function ok(name) { console.log("ok " + name); }
function assert(cond, msg) { if (!cond) throw new Error(msg); }

async function metric(base, name) {
	const res = await fetch(base + "/metrics");
	const text = await res.text();
	for (const line of text.split("\n")) {
		if (line.startsWith(name + " ")) return Number(line.slice(name.length + 1));
	}
	return NaN;
}

async function until(what, cond, ms = TIMEOUT) {
	const end = Date.now() + ms;
	for (;;) {
		if (await cond()) return;
		if (Date.now() > end) throw new Error("timed out waiting for " + what);
		await new Promise((r) => setTimeout(r, 100));
	}
}

function writeConfig(src) { // as editors save: a new file renamed over the old
	writeFileSync(CONFIG + ".new", src);
	renameSync(CONFIG + ".new", CONFIG);
}

// params opens the settings, as a user would, and sets them.
async function params(page, maxTokens, temperature) {
	if (!(await page.$eval("details.settings", (d) => d.open))) await page.click("details.settings summary");
	await page.fill("#max-tokens", String(maxTokens));
	if (temperature !== undefined) await page.fill("#temperature", String(temperature));
}

const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--no-sandbox", "--disable-gpu"] });
const errors = [];
async function newPage(opts = {}) {
	const ctx = await browser.newContext({ viewport: { width: 1100, height: 800 }, ...opts });
	const page = await ctx.newPage();
	page.setDefaultTimeout(TIMEOUT);
	page.on("pageerror", (e) => errors.push(e.message));
	page.on("dialog", (d) => { errors.push("unexpected dialog: " + d.message()); d.dismiss(); });
	return page;
}

try {
	// 1. Chat: send a message, see tokens stream in, the answer completes.
	{
		const page = await newPage();
		await page.goto(OPEN + "/");
		await page.waitForSelector("#model option", { state: "attached" });
		const first = await page.$eval("#model", (s) => s.options[0].value);
		assert(first === "tiny-llama", "the default model is not first: " + first);
		await params(page, 40, 0);
		await page.fill("#prompt", "Hello there");
		await page.click("#send");
		await page.waitForSelector(".msg.assistant .stats");
		const stats = await page.textContent(".msg.assistant .stats");
		assert(/first token [\d.]+ s/.test(stats) && /tokens\/s/.test(stats), "no time to first token or tokens/s: " + stats);
		const answer = await page.textContent(".msg.assistant .content");
		assert(answer.trim().length > 0, "empty answer");
		const stored = await page.evaluate(() => JSON.parse(localStorage.getItem("aiassist.conversations")));
		assert(stored[0].messages.length === 2 && stored[0].messages[0].content === "Hello there", "conversation not kept in localStorage");
		await page.reload();
		await page.waitForSelector(".msg.assistant");
		assert((await page.$$(".msg")).length === 2, "the conversation did not survive a reload of the page");
		await page.screenshot({ path: join(SHOTS, "chat.png") });
		// Regenerate replaces the last answer.
		await page.click(".regenerate");
		await page.waitForSelector(".msg.assistant .stats");
		assert((await page.$$(".msg")).length === 2, "regenerate did not replace the answer");
		ok("chat streams and completes");
		await page.context().close();
	}

	// 2. Stop mid-stream frees the sequence.
	{
		const page = await newPage();
		await page.goto(OPEN + "/chat");
		await page.waitForSelector("#model option", { state: "attached" });
		await params(page, 8000, 0);
		await page.fill("#prompt", "Tell me a long story");
		await page.click("#send");
		// Streaming: text arrives and the sequence is active.
		await page.waitForFunction(() => {
			const c = document.querySelector(".msg.assistant .content");
			return c && c.textContent.length > 20;
		});
		const active = await metric(OPEN, 'aiassist_sequences_active{model="tiny-llama"}');
		assert(active === 1, "no active sequence while streaming: " + active);
		assert(await page.isEnabled("#stop"), "Stop is not enabled while streaming");
		await page.click("#stop");
		await page.waitForSelector(".msg.assistant .stats");
		assert((await page.textContent(".msg.assistant .stats")).includes("stopped"), "the answer is not marked stopped");
		await until("aiassist_sequences_active to return to 0", async () => (await metric(OPEN, 'aiassist_sequences_active{model="tiny-llama"}')) === 0);
		const generated = await metric(OPEN, 'aiassist_generated_tokens_total{model="tiny-llama"}');
		assert(generated < 8000 + 200, "the generation ran to its end: " + generated);
		ok("stop frees the sequence");
		await page.context().close();
	}

	// 3. Model output is text, never markup, and the CSP blocks inline script.
	{
		const page = await newPage();
		const evil = "Look: <img src=x onerror=alert(1)> and <script>window.__pwned=1</script> **bold** [x](javascript:alert(2))";
		await page.route("**/v1/chat/completions", (route) => {
			const chunk = (content) => "data: " + JSON.stringify({ choices: [{ index: 0, delta: { content } }] }) + "\n\n";
			const body = chunk(evil.slice(0, 20)) + chunk(evil.slice(20)) +
				"data: " + JSON.stringify({ choices: [{ index: 0, delta: {}, finish_reason: "stop" }] }) + "\n\ndata: [DONE]\n\n";
			route.fulfill({ status: 200, headers: { "Content-Type": "text/event-stream" }, body });
		});
		await page.goto(OPEN + "/chat");
		await page.waitForSelector("#model option", { state: "attached" });
		await page.fill("#prompt", "hi");
		await page.click("#send");
		await page.waitForSelector(".msg.assistant .stats");
		const content = page.locator(".msg.assistant .content");
		assert((await content.locator("img, script").count()) === 0, "model output became markup");
		const shown = await content.textContent();
		assert(shown.includes("<img src=x onerror=alert(1)>") && shown.includes("<script>"), "the crafted text is not shown as text: " + shown);
		assert((await content.locator("strong").count()) === 1, "Markdown bold was not rendered");
		assert((await content.locator("a").count()) === 0, "a javascript: link was rendered");
		// The renderer on its own, as the page loads it.
		const direct = await page.evaluate(async () => {
			const { render } = await import("/ui/markdown.js");
			const div = document.createElement("div");
			div.append(render("# T\n<img src=x onerror=alert(1)>\n```\n<script>alert(1)</script>\n```\n- <b>x</b>"));
			return { tags: [...div.querySelectorAll("*")].map((e) => e.tagName).join(","), text: div.textContent };
		});
		assert(direct.tags === "H3,P,PRE,CODE,UL,LI", "renderer made unexpected elements: " + direct.tags);
		assert(direct.text.includes("<script>alert(1)</script>") && direct.text.includes("<b>x</b>"), "renderer lost text");
		// An injected inline script does not run, and the browser says why.
		const csp = await page.evaluate(async () => {
			const violations = [];
			document.addEventListener("securitypolicyviolation", (e) => violations.push(e.violatedDirective));
			const s = document.createElement("script");
			s.textContent = "window.__inline = 1";
			document.body.append(s);
			await new Promise((r) => setTimeout(r, 200));
			return { ran: window.__inline === 1, pwned: window.__pwned === 1, violations };
		});
		assert(!csp.ran && !csp.pwned, "an inline script ran");
		assert(csp.violations.some((v) => v.startsWith("script-src")), "no CSP violation reported: " + csp.violations);
		ok("model output is text and the CSP blocks inline script");
		await page.context().close();
	}

	// 4. Auth: the key prompt, a wrong key's 401 message, then a right key.
	{
		const page = await newPage();
		await page.goto(AUTH + "/chat");
		await page.waitForSelector("#key-dialog[open]");
		assert((await page.textContent("#key-message")).includes("none given"), "the first prompt does not say no key was given");
		await page.fill("#key-input", "aia_aaaaaaaa_aaaaaaaaaaaaaaaaaaaaaaaaaa");
		await page.click("#key-dialog button[type=submit]");
		await page.waitForFunction(() => document.querySelector("#key-dialog").open && /did not accept the API key\. Enter/.test(document.querySelector("#key-message").textContent));
		await page.fill("#key-input", KEY);
		await page.click("#key-dialog button[type=submit]");
		await page.waitForSelector("#model option", { state: "attached" });
		assert(await page.evaluate(() => sessionStorage.getItem("aiassist.key") !== null), "the key is not kept in sessionStorage");
		assert(await page.evaluate(() => localStorage.getItem("aiassist.key") === null), "the key leaked into localStorage");
		await params(page, 10);
		await page.fill("#prompt", "Hello");
		await page.click("#send");
		await page.waitForSelector(".msg.assistant .stats");
		assert((await page.$$(".msg.error")).length === 0, "chat with the right key failed");
		ok("auth prompt, 401 message, chat with the key");
		await page.context().close();
	}

	// 5. Status: generation rises after an edit; a broken edit shows file:line:col.
	{
		const page = await newPage({ viewport: { width: 360, height: 900 } });
		await page.goto(OPEN + "/status");
		await page.waitForFunction(() => /^\d+$/.test(document.querySelector("#generation").textContent));
		const before = Number(await page.textContent("#generation"));
		assert((await page.textContent("#models")).includes("tiny-llama"), "the model table lacks tiny-llama");
		const width = await page.evaluate(() => document.documentElement.scrollWidth);
		assert(width <= 360, "the status page overflows 360 px: " + width);
		writeConfig(GOOD);
		await page.waitForFunction((b) => Number(document.querySelector("#generation").textContent) > b, before);
		writeConfig(BAD);
		await page.waitForFunction(() => /config\.cue:\d+:\d+/.test(document.querySelector("#reload-error").textContent));
		assert((await page.textContent("#reload-result")) === "failure", "the failed reload is not shown as a failure");
		// The in-process evaluator fires AiassistReloadFailed (for: 0 by default), and the page lists it.
		await page.waitForFunction(() => [...document.querySelectorAll("#alerts tr")].some((tr) => /AiassistReloadFailed/.test(tr.textContent) && /firing/.test(tr.textContent)));
		await page.waitForFunction(() => document.querySelector("#v-rate").textContent !== "–");
		await page.screenshot({ path: join(SHOTS, "status.png"), fullPage: true });
		ok("status page follows reloads");
		await page.context().close();
	}
	// 6. The chat page at 360 px does not overflow, and the keyboard reaches the composer.
	{
		const page = await newPage({ viewport: { width: 360, height: 740 } });
		await page.goto(OPEN + "/chat");
		await page.waitForSelector("#model option", { state: "attached" });
		const width = await page.evaluate(() => document.documentElement.scrollWidth);
		assert(width <= 360, "the chat page overflows 360 px: " + width);
		await page.waitForFunction(() => document.activeElement && document.activeElement.id === "prompt");
		await page.keyboard.type("Hi");
		await page.keyboard.press("Tab");
		assert(await page.evaluate(() => document.activeElement.id === "send"), "Tab from the message box does not reach Send");
		const outline = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
		assert(outline !== "none", "the focused button shows no focus ring");
		ok("chat page at 360 px");
		await page.context().close();
	}
	// 7. Status with auth on: the chat key lacks "admin" and is refused with
	// the reason; the admin key shows the page and is kept apart from the
	// chat page's key.
	{
		const page = await newPage();
		await page.goto(AUTH + "/chat");
		await page.waitForSelector("#key-dialog[open]");
		await page.fill("#key-input", KEY);
		await page.click("#key-dialog button[type=submit]");
		await page.waitForSelector("#model option", { state: "attached" });
		await page.goto(AUTH + "/status");
		await page.waitForSelector("#key-dialog[open]");
		await page.fill("#key-input", KEY);
		await page.click("#key-dialog button[type=submit]");
		await page.waitForFunction(() => document.querySelector("#key-dialog").open && /admin/.test(document.querySelector("#key-message").textContent));
		await page.fill("#key-input", ADMIN_KEY);
		await page.click("#key-dialog button[type=submit]");
		await page.waitForFunction(() => /^\d+$/.test(document.querySelector("#generation").textContent));
		const keys = await page.evaluate(() => [sessionStorage.getItem("aiassist.key"), sessionStorage.getItem("aiassist.admin-key")]);
		assert(keys[0] === KEY && keys[1] === ADMIN_KEY, "the two pages' keys are not kept apart");
		ok("status page asks for an admin key");
		await page.context().close();
	}
	assert(errors.length === 0, "page errors: " + errors.join("; "));
	ok("no page errors");
} finally {
	await browser.close();
}
