// The newsrag page: asks /ask (streamed) or /search and shows what comes back.
// Everything from the server goes into the page as text (textContent, text nodes), never as HTML.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const els = {
    status: $("status"), freshness: $("freshness"), form: $("query"), q: $("q"), go: $("go"), passagesOnly: $("passages-only"),
    modeField: $("mode-field"), asOf: $("as-of"), asOfField: $("as-of-field"), since: $("since"),
    until: $("until"), source: $("source"), filters: $("filters"), notice: $("notice"), message: $("message"),
    progress: $("progress"), answer: $("answer"), answerHeading: $("answer-heading"),
    answerText: $("answer-text"), warnings: $("warnings"), sourcesHeading: $("sources-heading"),
    citations: $("citations"), passages: $("passages"), passagesHeading: $("passages-heading"),
    passageList: $("passage-list"), article: $("article"), articleTitle: $("article-title"),
    articleMeta: $("article-meta"), articleLink: $("article-link"), articleText: $("article-text"),
    closeArticle: $("close-article"), speaker: $("speaker"), speakerTitle: $("speaker-title"),
    speakerMeta: $("speaker-meta"), speakerQuotes: $("speaker-quotes"), closeSpeaker: $("close-speaker"),
  };
  // Field names in the API's 422s, as the labels on this page call them.
  const LABELS = { q: "Question", question: "Question", as_of: "As of", since: "From", until: "To", source: "Source" };
  const INPUTS = { q: els.q, question: els.q, as_of: els.asOf, since: els.since, until: els.until, source: els.source };

  // One page of a speaker's quotes (the API's limit); the view says when there are more.
  const QUOTES_PAGE = 100;

  const state = {
    retrievalOnly: false, run: null, citations: new Map(), articles: new Map(), opener: null,
    speakers: new Map(), speakerOpener: null,
  };

  // -- small DOM helpers ------------------------------------------------------------------------
  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value);
    }
    for (const child of children) {
      if (child !== null && child !== undefined) node.append(child);
    }
    return node;
  }

  function show(node, visible) { node.hidden = !visible; }

  function safeUrl(url) {
    // Only web links become clickable: a "javascript:" URL in an article stays plain text.
    return typeof url === "string" && /^https?:\/\//i.test(url.trim()) ? url.trim() : null;
  }

  function meta(item) {
    const parts = [item.source || "unknown source", item.published_at || "undated"];
    if (item.author) parts.push("by " + item.author);
    return parts.join(" · ");
  }

  // -- messages -----------------------------------------------------------------------------------
  function setMessage(text) {
    els.message.textContent = text || "";
    show(els.message, Boolean(text));
  }

  function clearInvalid() {
    for (const input of new Set(Object.values(INPUTS))) input.removeAttribute("aria-invalid");
  }

  class ApiError extends Error {}

  async function errorFrom(response) {
    let body = null;
    try { body = await response.json(); } catch (_) { /* not JSON: fall back to the status */ }
    const status = response.status;
    let text;
    if (body && Array.isArray(body.errors) && body.errors.length) {
      text = body.errors.map((e) => `${LABELS[e.field] || e.field}: ${e.message}`).join("; ");
      for (const e of body.errors) if (INPUTS[e.field]) INPUTS[e.field].setAttribute("aria-invalid", "true");
    } else {
      text = (body && (body.message || body.detail)) || response.statusText || "no details";
    }
    const lead = {
      401: "This server needs an API key", 403: "The API key was refused", 404: "Not found",
      422: "Please fix the question or filters", 503: "The server cannot search right now",
    }[status] || "The request failed";
    const rid = body && body.request_id ? ` (request id ${body.request_id})` : "";
    return new ApiError(`${lead} (${status}): ${text}${rid}`);
  }

  function failed(err) {
    if (err && err.name === "AbortError") return;
    const text = err instanceof ApiError ? err.message
      : "Could not reach the server: check that `rag serve` is running, then try again.";
    setMessage(text);
    els.progress.textContent = "";
    const invalid = document.querySelector("[aria-invalid=true]");
    if (invalid) invalid.focus();
  }

  // -- server info --------------------------------------------------------------------------------
  async function health() {
    try {
      const response = await fetch("/health", { headers: { Accept: "application/json" } });
      const info = await response.json();
      state.retrievalOnly = Boolean(info.retrieval_only);
      const where = info.index_loaded
        ? `${info.articles} articles, ${info.chunks} passages indexed`
        : "no index loaded";
      els.status.textContent = `${where}${state.retrievalOnly ? " · retrieval only" : ""} · v${info.version}`;
      freshness(info.built_at);
      if (!info.index_loaded) {
        els.notice.textContent = `No index is loaded: ${info.problem || "run `rag reindex <folder>`"}`;
        show(els.notice, true);
      }
    } catch (_) {
      els.status.textContent = "The server did not answer /health.";
    }
    applyMode();
  }

  // "updated 4 minutes ago": how fresh the index is (rag watch / --refresh rebuild it), kept current.
  function freshness(builtAt) {
    clearTimeout(state.freshnessTimer);
    const at = builtAt ? Date.parse(builtAt) : NaN;
    if (Number.isNaN(at)) { els.freshness.textContent = ""; return; }
    const minutes = Math.max(0, Math.round((Date.now() - at) / 60000));
    const ago = minutes < 1 ? "just now" : minutes < 120 ? `${minutes} minute${minutes === 1 ? "" : "s"} ago`
      : minutes < 2880 ? `${Math.round(minutes / 60)} hours ago` : `${Math.round(minutes / 1440)} days ago`;
    els.freshness.textContent = `index updated ${ago}`;
    els.freshness.title = builtAt;
    state.freshnessTimer = setTimeout(() => freshness(builtAt), 60000);
  }

  function passagesOnly() { return state.retrievalOnly || els.passagesOnly.checked; }

  function applyMode() {
    const only = passagesOnly();
    show(els.modeField, !state.retrievalOnly);
    show(els.asOfField, !only);
    els.go.textContent = only ? "Search" : "Ask";
    document.body.classList.toggle("retrieval-only", state.retrievalOnly);
    if (state.retrievalOnly) els.q.placeholder = "Words or a question to search for";
  }

  // -- rendering ----------------------------------------------------------------------------------
  function resetResults() {
    setMessage("");
    clearInvalid();
    els.progress.textContent = "";
    els.answerText.replaceChildren();
    els.citations.replaceChildren();
    els.passageList.replaceChildren();
    els.warnings.replaceChildren();
    show(els.warnings, false);
    show(els.sourcesHeading, false);
    show(els.answer, false);
    show(els.passages, false);
    els.answer.classList.remove("abstained");
    state.citations = new Map();
  }

  function renderPassages(hits, heading) {
    els.passagesHeading.textContent = heading;
    els.passageList.replaceChildren(...hits.map((hit) => {
      const open = el("a", {
        href: "#article", class: "passage-title", text: hit.title || "Untitled",
        onclick: (event) => { event.preventDefault(); openArticle(hit.article_id, hit.start, hit.end, event.currentTarget); },
      });
      return el("li", { class: "passage" },
        el("div", { class: "passage-head" },
          el("span", { class: "rank", text: `#${hit.rank}` }),
          open,
          el("span", { class: "score", title: "retrieval score", text: `score ${Number(hit.score).toFixed(4)}` })),
        el("p", { class: "meta", text: meta(hit) }),
        el("p", { class: "passage-text", text: hit.text }));
    }));
    show(els.passages, true);
  }

  function citeLink(n) {
    return el("a", {
      href: `#source-${n}`, class: "cite", "data-n": String(n), "aria-label": `source ${n}`, text: `[${n}]`,
      onclick: (event) => { event.preventDefault(); openCitation(n, event.currentTarget); },
    });
  }

  function renderAnswer(text) {
    const parts = [];
    let last = 0;
    for (const match of text.matchAll(/\[(\d+)\]/g)) {
      if (match.index > last) parts.push(document.createTextNode(text.slice(last, match.index)));
      parts.push(citeLink(Number(match[1])));
      last = match.index + match[0].length;
    }
    if (last < text.length) parts.push(document.createTextNode(text.slice(last)));
    els.answerText.replaceChildren(...parts);
    els.answerHeading.textContent = "Answer";
    show(els.answer, true);
  }

  function renderCitations(citations) {
    state.citations = new Map(citations.map((c) => [c.n, c]));
    els.citations.replaceChildren(...citations.map((c) => el("li", { id: `source-${c.n}`, class: "citation" },
      citeLink(c.n), " ",
      el("span", { class: "citation-title", text: c.title || "Untitled" }),
      el("span", { class: "meta", text: ` · ${meta(c)}` }),
      c.supported === false ? el("span", { class: "flag", text: " · not supported by the passages" }) : null,
      el("blockquote", { class: "quote", text: c.quote }),
      c.speaker ? speakerLine(c.speaker) : null)));
    show(els.sourcesHeading, citations.length > 0);
  }

  function renderDone(done) {
    if (done.abstained) {
      // An abstention is a statement that the news does not cover the question: no answer styling.
      els.answer.classList.add("abstained");
      els.answerHeading.textContent = "No answer: the indexed news does not cover this";
      els.citations.replaceChildren();
      show(els.sourcesHeading, false);
      els.passagesHeading.textContent = "Closest passages";
    }
    if (Array.isArray(done.warnings) && done.warnings.length) {
      els.warnings.textContent = "Note: " + done.warnings.join(" ");
      show(els.warnings, true);
    }
    const t = done.timings || {};
    const asOf = done.as_of ? ` as of ${done.as_of}` : "";
    els.progress.textContent = `Answered${asOf} in ${Math.round((t.retrieve_ms || 0) + (t.compose_ms || 0))} ms.`;
  }

  // -- the article beside the answer --------------------------------------------------------------
  function codeUnit(text, codePoints) {
    // The API's offsets count Unicode code points (Python); JavaScript strings count UTF-16 units.
    let unit = 0;
    for (let i = 0; i < codePoints && unit < text.length; i++) {
      unit += text.codePointAt(unit) > 0xffff ? 2 : 1;
    }
    return unit;
  }

  async function getJson(url) {
    const response = await fetch(url, { headers: { Accept: "application/json" } });
    if (!response.ok) throw await errorFrom(response);
    return response.json();
  }

  async function fetchArticle(id) {
    if (!state.articles.has(id)) {
      const pending = getJson(`/articles/${encodeURIComponent(id)}`);
      state.articles.set(id, pending);
      pending.catch(() => state.articles.delete(id));
    }
    return state.articles.get(id);
  }

  function openCitation(n, opener) {
    const citation = state.citations.get(n);
    if (!citation) {
      setMessage(`Source [${n}] has not arrived yet: wait for the answer to finish.`);
      return;
    }
    openArticle(citation.article_id, citation.start, citation.end, opener);
  }

  async function openArticle(id, start, end, opener) {
    state.opener = opener || null;
    const token = Symbol("article");
    state.articleToken = token;
    let article;
    try {
      article = await fetchArticle(id);
    } catch (err) {
      failed(err);
      return;
    }
    if (state.articleToken !== token) return;
    const text = article.text || "";
    const a = codeUnit(text, start);
    const b = codeUnit(text, end);
    const mark = el("mark", { id: "quote", text: text.slice(a, b) });
    els.articleText.replaceChildren(document.createTextNode(text.slice(0, a)), mark,
      document.createTextNode(text.slice(b)));
    els.articleTitle.textContent = article.title || "Untitled";
    els.articleMeta.textContent = meta(article);
    const url = safeUrl(article.url);
    els.articleLink.replaceChildren(url
      ? el("a", { href: url, rel: "noopener noreferrer nofollow", target: "_blank", text: url })
      : document.createTextNode(article.url ? `URL: ${article.url}` : "no URL recorded"));
    show(els.article, true);
    document.body.classList.add("article-open");
    els.article.focus({ preventScroll: true });
    // Centre the quote inside the article's own scroll box, then bring the whole box into view
    // (scrollIntoView on the mark would scroll the page too, hiding the title above it).
    const box = els.articleText;
    box.scrollTop = 0;
    const top = mark.getBoundingClientRect().top - box.getBoundingClientRect().top;
    box.scrollTop = Math.max(0, top - (box.clientHeight - mark.getBoundingClientRect().height) / 2);
    const panel = els.article.getBoundingClientRect();
    if (panel.top < 0 || panel.bottom > window.innerHeight) els.article.scrollIntoView({ block: "nearest" });
  }

  function closeArticle(restoreFocus = true) {
    state.articleToken = null;
    if (els.article.hidden) return false;
    show(els.article, false);
    document.body.classList.remove("article-open");
    if (restoreFocus && state.opener && document.contains(state.opener)) state.opener.focus();
    return true;
  }

  // -- who said what: a citation's speaker and their other quotes ---------------------------------
  function speakerLine(name) {
    // "said by X" as text, which becomes a button once /speakers knows X: a source that is no
    // person ("the company", "an NIS official") has no quotes of its own to list.
    const line = el("p", { class: "speaker", text: `said by ${name}` });
    findSpeaker(name).then((speaker) => {
      if (speaker) line.replaceChildren(el("button", {
        type: "button", class: "chip", "aria-controls": "speaker", text: `said by ${name}`,
        "aria-label": `said by ${name}: show their quotes`,
        onclick: (event) => openSpeaker(speaker, event.currentTarget),
      }));
    }, () => { /* no list to offer (e.g. reads need a key): the name stays plain text */ });
    return line;
  }

  function findSpeaker(name) {
    // A citation names its speaker as the article did; /speakers gives the id. The whole name,
    // or else the one person a partial name ("Blair") fits: nobody else's quotes are shown as theirs.
    if (!state.speakers.has(name)) {
      const params = new URLSearchParams({ q: name, limit: String(QUOTES_PAGE) });
      const pending = getJson(`/speakers?${params}`)
        .then((found) => found.find((s) => s.name === name) || (found.length === 1 ? found[0] : null));
      state.speakers.set(name, pending);
      pending.catch(() => state.speakers.delete(name));
    }
    return state.speakers.get(name);
  }

  async function openSpeaker(speaker, opener) {
    state.speakerOpener = opener || null;
    const token = Symbol("speaker");
    state.speakerToken = token;
    let page;
    try {
      page = await getJson(`/speakers/${encodeURIComponent(speaker.id)}/quotes?limit=${QUOTES_PAGE}`);
    } catch (err) {
      if (state.speakerToken === token) failed(err);
      return;
    }
    if (state.speakerToken !== token) return;
    renderSpeaker(page.speaker, page.quotes);
    show(els.speaker, true);
    els.speaker.focus({ preventScroll: true });
    els.speaker.scrollIntoView({ block: "nearest" });
  }

  function renderSpeaker(speaker, quotes) {
    els.speakerTitle.textContent = `Quotes by ${speaker.name}`;
    const count = `${speaker.quotes} quote${speaker.quotes === 1 ? "" : "s"} in the index`;
    els.speakerMeta.textContent = quotes.length < speaker.quotes ? `${count}; the first ${quotes.length} are shown` : count;
    const cited = [...state.citations.values()];
    els.speakerQuotes.replaceChildren(...quotes.map((q) => {
      const same = cited.find((c) => c.article_id === q.article_id && c.start === q.start && c.end === q.end);
      return el("li", { class: "speaker-quote" },
        el("blockquote", { class: "quote" }, el("a", {
          href: "#article", class: "quote-link", text: q.quote,
          onclick: (event) => { event.preventDefault(); openArticle(q.article_id, q.start, q.end, event.currentTarget); },
        })),
        el("p", { class: "meta", text: `${q.title || "Untitled"} · ${meta(q)}${same ? ` · cited above as [${same.n}]` : ""}` }));
    }));
  }

  function closeSpeaker(restoreFocus = true) {
    state.speakerToken = null;
    if (els.speaker.hidden) return;
    show(els.speaker, false);
    els.speakerQuotes.replaceChildren();
    if (restoreFocus && state.speakerOpener && document.contains(state.speakerOpener)) state.speakerOpener.focus();
  }

  // -- talking to the API -------------------------------------------------------------------------
  function filters() {
    const out = {};
    if (els.since.value) out.since = els.since.value;
    if (els.until.value) out.until = els.until.value;
    if (els.source.value.trim()) out.source = els.source.value.trim();
    return out;
  }

  async function search(question, signal) {
    els.progress.textContent = "Searching…";
    const params = new URLSearchParams({ q: question, ...filters() });
    const response = await fetch(`/search?${params}`, { signal, headers: { Accept: "application/json" } });
    if (!response.ok) throw await errorFrom(response);
    const hits = await response.json();
    renderPassages(hits, "Passages");
    els.progress.textContent = hits.length
      ? `${hits.length} passage${hits.length === 1 ? "" : "s"}, best first.`
      : "No passages matched: try other words or widen the filters.";
  }

  function* frames(buffer) {
    // Complete server-sent-event frames in ``buffer.text``; the unfinished tail stays there.
    let cut;
    while ((cut = buffer.text.search(/\r?\n\r?\n/)) >= 0) {
      const raw = buffer.text.slice(0, cut);
      buffer.text = buffer.text.slice(cut).replace(/^\r?\n\r?\n/, "");
      let event = "message";
      const data = [];
      for (const line of raw.split(/\r?\n/)) {
        if (line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (field === "event") event = value;
        else if (field === "data") data.push(value);
      }
      if (data.length) yield { event, data: JSON.parse(data.join("\n")) };
    }
  }

  async function ask(question, signal) {
    els.progress.textContent = "Finding passages…";
    const body = { question, stream: true, ...filters() };
    if (els.asOf.value) body.as_of = els.asOf.value;
    const response = await fetch("/ask", {
      method: "POST", signal, body: JSON.stringify(body),
      headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
    });
    if (!response.ok) throw await errorFrom(response);
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    const buffer = { text: "" };
    let finished = false;
    try {
      for (;;) {
        const { value, done } = await reader.read();
        buffer.text += decoder.decode(value || new Uint8Array(), { stream: !done });
        for (const { event, data } of frames(buffer)) {
          if (event === "passages") {
            renderPassages(data, "Passages the answer draws on");
            els.progress.textContent = `${data.length} passages found; composing the answer…`;
          } else if (event === "answer") {
            renderAnswer(data.text);
          } else if (event === "citations") {
            renderCitations(data);
          } else if (event === "done") {
            renderDone(data);
            finished = true;
          } else if (event === "error") {
            finished = true;
            throw new ApiError(`The answer failed (${data.status}): ${data.message || data.detail}` +
              (data.request_id ? ` (request id ${data.request_id})` : ""));
          }
        }
        if (done) break;
      }
    } catch (err) {
      if (err instanceof ApiError || (err && err.name === "AbortError")) throw err;
      finished = false;
    }
    if (!finished) {
      throw new ApiError("The answer stream was cut off before it finished: the connection dropped. " +
        "Anything shown above may be incomplete; ask again.");
    }
  }

  async function submit(event) {
    event.preventDefault();
    if (state.run) state.run.abort();
    const run = new AbortController();
    state.run = run;
    resetResults();
    closeArticle(false);  // they belonged to the previous results
    closeSpeaker(false);
    els.form.setAttribute("aria-busy", "true");
    const question = els.q.value;
    try {
      if (passagesOnly()) await search(question, run.signal);
      else await ask(question, run.signal);
    } catch (err) {
      if (state.run === run) failed(err);
    } finally {
      if (state.run === run) {
        els.form.removeAttribute("aria-busy");
        state.run = null;
      }
    }
  }

  els.form.addEventListener("submit", submit);
  els.passagesOnly.addEventListener("change", applyMode);
  els.closeArticle.addEventListener("click", () => closeArticle());
  els.closeSpeaker.addEventListener("click", () => closeSpeaker());
  document.addEventListener("keydown", (event) => {
    // The article (opened from the answer or from a quote) closes first, then the quotes.
    if (event.key === "Escape" && !closeArticle()) closeSpeaker();
  });
  applyMode();
  health();
})();
