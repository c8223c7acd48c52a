/* hlrd's compliance page: everything shown comes from the /v1 API of the daemon
 * that served this file. No framework, no build step, nothing loaded from elsewhere
 * (the Content-Security-Policy forbids it). Phone numbers are never put in the URL
 * hash or in storage; the only thing stored is the access token, in this tab's
 * sessionStorage. */
"use strict";

(() => {
  const TOKEN_KEY = "hlrd.token";
  const SECTIONS = ["wash", "check", "lists", "erasure"];
  const MOVING = new Set(["previewing", "running"]);
  const IMPORT_POLL_MS = 300;
  const JOB_POLL_MS = 1000;

  const $ = (id) => document.getElementById(id);

  // -- building the DOM (textContent only: a CSV header or an API message is never HTML)

  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") el.className = value;
      else if (key === "text") el.textContent = value;
      else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
      else if (value === true) el.setAttribute(key, "");
      else el.setAttribute(key, String(value));
    }
    append(el, children);
    return el;
  }

  function append(el, children) {
    for (const child of children) {
      if (child === null || child === undefined || child === false) continue;
      if (Array.isArray(child)) append(el, child);
      else el.append(child instanceof Node ? child : String(child));
    }
  }

  // A table cell that can stack on narrow screens: its column's name, then one box.
  function cell(tag, label, attrs, ...children) {
    return h(tag, { ...(attrs || {}), "data-label": label }, h("div", { class: "cell" }, children));
  }

  // Replaces an element's children (skipping null, flattening arrays).
  function fill(el, ...children) {
    el.replaceChildren();
    append(el, children);
    return el;
  }

  const cap = (s) => (s ? s.charAt(0).toUpperCase() + s.slice(1) : s);

  // -- formatting

  const intFormat = new Intl.NumberFormat("en");
  const fmtInt = (n) => (typeof n === "number" ? intFormat.format(n) : "—");
  const fmtPercent = (part, whole) =>
    whole > 0 ? `${(Math.round((part / whole) * 1000) / 10).toFixed(1)} %` : "—";

  const regionNames = (() => {
    try {
      return new Intl.DisplayNames(["en"], { type: "region" });
    } catch (_) {
      return null;
    }
  })();

  function countryName(cc) {
    if (!cc || cc === "unknown") return "an unknown country";
    if (cc === "001") return "non-geographic numbering (satellite)";
    try {
      const name = regionNames && regionNames.of(cc);
      if (name && name !== cc) return name;
    } catch (_) {
      /* not a region code: shown as it is */
    }
    return cc;
  }

  function countryLabel(cc) {
    if (!cc || cc === "unknown") return "Unknown";
    const name = countryName(cc);
    return name === cc ? cc : `${cap(name)} (${cc})`;
  }

  const dateFormat = new Intl.DateTimeFormat("en-GB", {
    year: "numeric",
    month: "short",
    day: "numeric",
    hour: "2-digit",
    minute: "2-digit",
    timeZoneName: "short",
  });

  function fmtTime(value) {
    if (value === null || value === undefined || value === "") return "—";
    const date = typeof value === "number" ? new Date(value * 1000) : new Date(value);
    return Number.isNaN(date.getTime()) ? String(value) : dateFormat.format(date);
  }

  function fmtBytes(n) {
    if (!(n >= 0)) return "—";
    if (n < 1024) return `${n} bytes`;
    const units = ["KB", "MB", "GB"];
    let v = n / 1024;
    let i = 0;
    while (v >= 1024 && i < units.length - 1) {
      v /= 1024;
      i += 1;
    }
    return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
  }

  function fmtDuration(seconds) {
    if (!(seconds >= 0)) return "—";
    if (seconds < 60) return `${seconds < 10 ? seconds.toFixed(2) : Math.round(seconds)} s`;
    const m = Math.floor(seconds / 60);
    if (m < 60) return `${m} min ${Math.round(seconds % 60)} s`;
    return `${Math.floor(m / 60)} h ${m % 60} min`;
  }

  function fmtDays(days) {
    if (!(days >= 0)) return "—";
    if (days >= 1) return `${intFormat.format(Math.round(days * 10) / 10)} days`;
    return fmtAge(days * 86400);
  }

  function fmtAge(seconds) {
    if (!(seconds >= 0)) return "—";
    if (seconds < 1.5) return seconds < 1 ? "less than a second" : "1 second";
    if (seconds < 120) return `${Math.round(seconds)} seconds`;
    if (seconds < 7200) return `${Math.round(seconds / 60)} minutes`;
    if (seconds < 172800) return `${Math.round(seconds / 3600)} hours`;
    return `${Math.round(seconds / 86400)} days`;
  }

  function fmtMoney(amount, currency) {
    try {
      return new Intl.NumberFormat("en", {
        style: "currency",
        currency,
        maximumFractionDigits: 4,
      }).format(amount);
    } catch (_) {
      return `${amount} ${currency}`;
    }
  }

  function fmtCost(costs) {
    const entries = Object.entries(costs || {});
    if (!entries.length) return "None (no price configured)";
    return entries.map(([cur, amount]) => fmtMoney(amount, cur)).join(" + ");
  }

  const e164 = (digits) => (digits ? `+${digits}` : "—");

  // -- what the codes mean, in plain words (docs/compliance.md, section 2)

  const DECISIONS = {
    allow: { title: "Call", label: "May be called", cls: "allow", icon: "✓" },
    block: { title: "Do not call", label: "Do not call", cls: "block", icon: "✕" },
    defer: {
      title: "Not now — call later",
      label: "Call later (not now)",
      cls: "defer",
      icon: "◷",
    },
    unknown: { title: "Cannot tell", label: "Could not tell", cls: "unknown", icon: "?" },
    invalid: { title: "Invalid number", label: "Not a valid number", cls: "invalid", icon: "!" },
  };
  const DECISION_ORDER = ["allow", "block", "defer", "unknown", "invalid"];

  const listLabel = (name) =>
    name === "dnc" ? "your own do-not-call list (dnc)" : `the do-not-call list “${name}”`;
  const CHANNELS = {
    voice: "voice calls",
    sms: "SMS",
    ivr: "automated (IVR) calls",
    messenger: "messenger",
  };
  const channel = (c) => CHANNELS[c] || c || "this channel";

  // Each reason: its words (with the part after ":" and the lookup), and what to do.
  const REASONS = {
    none: { text: () => "Nothing objects: may be called" },
    erased: {
      text: () => "The person asked to be forgotten (erased)",
      todo: "Nothing: the number is never looked up or called again. Take it off the campaign.",
    },
    listed: {
      text: (arg) => (arg ? `On ${listLabel(arg)}` : "On a do-not-call list"),
      todo: "Take the number off the campaign.",
    },
    list_stale: {
      text: (arg) =>
        arg
          ? `The do-not-call list “${arg}” is out of date (stale)`
          : "A do-not-call list is out of date (stale)",
      todo: "Import the registry's current file (Do-not-call lists). Until then this policy blocks every number.",
    },
    consent_missing: {
      text: (arg) => (arg ? `No consent recorded for ${channel(arg)}` : "No consent recorded"),
      todo: "Record the person's consent, or check the number under a policy that needs none.",
    },
    consent_expired: {
      text: (arg) => (arg ? `The consent for ${channel(arg)} has expired` : "Consent expired"),
      todo: "Record the renewed consent as a new record.",
    },
    consent_withdrawn: {
      text: (arg) =>
        arg ? `The person withdrew consent for ${channel(arg)}` : "Consent withdrawn",
      todo: "Only a consent given after the withdrawal counts again.",
    },
    ownership_unverified: {
      text: (arg) =>
        `The consent${arg ? ` for ${channel(arg)}` : ""} was given without proof of holding the number`,
      todo: "Verify the holder (for example a code sent to the number) and record the consent again as verified.",
    },
    subscriber_changed: {
      text: () => "The number has changed hands since consent was given (another SIM)",
      todo: "Ask the person; if it is still them, record consent again.",
    },
    absent: {
      text: () => "The phone is switched off or out of coverage",
      todo: "Try again later.",
    },
    invalid_subscriber: {
      text: () => "The number is not in service (no such subscriber)",
      todo: "Remove it from the list.",
    },
    restricted: {
      text: () => "The subscriber is barred or the service is not provisioned",
      todo: "Remove it from the list, or try later.",
    },
    roaming_non_eea: {
      text: (_, look) => `Roaming outside the EEA${inCountry(look)}`,
      todo: "Try after the trip: the roaming answer is kept for a few hours (the [cache] time to live), then the number is looked up again.",
    },
    roaming_eea: {
      text: (_, look) => `Roaming inside the EEA${inCountry(look)}, which this policy blocks`,
      todo: "Try after the trip.",
    },
    roaming_domestic: { text: () => "Roaming in the home zone, which this policy blocks" },
    roaming_country_blocked: {
      text: (arg) =>
        `Roaming in ${arg ? countryName(arg) : "a country"}, a country this policy blocks`,
      todo: "Try after the trip.",
    },
    roaming_unknown: {
      text: () => "Could not tell whether the phone is abroad",
      todo: "Retry later.",
    },
    calling_hours: {
      text: (arg) =>
        arg ? `Outside the calling hours in ${countryName(arg)}` : "Outside the calling hours",
      todo: "Check again at the time shown.",
    },
    public_holiday: {
      text: (arg) => (arg ? `A public holiday in ${countryName(arg)}` : "A public holiday"),
      todo: "Check again at the time shown.",
    },
    calling_hours_none: {
      text: (arg) =>
        `No allowed calling time${arg ? ` in ${countryName(arg)}` : ""} within the next 14 days`,
      todo: "Waiting does not help: the policy's calling hours for this country need fixing.",
    },
    lookup_failed: { text: () => "The network lookup failed", todo: "Retry later." },
    lookup_timeout: {
      text: () => "The network lookup got no answer in time",
      todo: "Retry later.",
    },
    lookup_throttled: {
      text: () => "The lookup was refused by a rate limit",
      todo: "Retry later.",
    },
    reachability_unknown: {
      text: () => "The network gave no usable answer about the phone",
      todo: "Retry later.",
    },
    audit_backlog: {
      text: () => "The decision could not be recorded in the audit trail, so none is given",
      todo: "Nothing per number: the audit trail's storage needs fixing (ask your administrator).",
    },
    subscriber_unverified: {
      text: () => "Could not confirm that the SIM is the same as when consent was given",
      todo: "hlrd still allows the call; a campaign that must not call such numbers treats this as a block.",
    },
    // Job rows that are not numbers (the preview's invalid counts and by_reason)
    invalid_number: { text: () => "Not a valid phone number" },
    not_a_number: { text: () => "Not a phone number" },
    too_short: { text: () => "Too few digits" },
    too_long: { text: () => "Too many digits, or a row too long" },
    invalid_for_country: { text: () => "No such number range in its country" },
    not_mobile: { text: () => "A landline or service number, not a mobile" },
    bad_encoding: { text: () => "A row that is not UTF-8 text" },
    too_many_columns: { text: () => "A row with too many columns" },
    malformed: { text: () => "A row that cannot be read (broken quoting)" },
  };

  function inCountry(look) {
    const cc = look && (look.visited_country || look.serving_country);
    return cc ? ` (in ${countryName(cc)})` : "";
  }

  function reason(code, lookup) {
    const [key, arg] = code.split(/:(.*)/s);
    const known = REASONS[key];
    if (!known) return { text: code, todo: null, known: false };
    return { text: known.text(arg || "", lookup), todo: known.todo || null, known: true };
  }

  // -- talking to the API (with the access token when this hlrd wants one)

  let token = sessionStorage.getItem(TOKEN_KEY) || "";
  let tokenWait = null;

  class ApiError extends Error {
    constructor(status, body, fallback) {
      const err = body && typeof body === "object" && body.error ? body.error : null;
      super(err && err.message ? cap(err.message) : fallback);
      this.status = status;
      this.code = err ? err.code : null;
      this.field = err ? err.field : null;
      this.reason = err ? err.reason : null;
    }
  }

  function apiUrl(path, query) {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(query || {})) {
      if (value !== null && value !== undefined && value !== "") params.set(key, value);
    }
    const qs = params.toString();
    return qs ? `${path}?${qs}` : path;
  }

  // For what a browser cannot give a header: the event stream and download links.
  const withToken = (path) => (token ? apiUrl(path, { access_token: token }) : path);

  function parsed(status, text) {
    let body = null;
    try {
      body = text ? JSON.parse(text) : null;
    } catch (_) {
      body = null;
    }
    if (status >= 200 && status < 300) return body;
    throw new ApiError(status, body, `hlrd answered with an error (HTTP ${status}).`);
  }

  const NO_ANSWER =
    "hlrd did not answer. Check that the daemon is running and reachable, then try again.";

  async function api(method, path, query) {
    for (;;) {
      const headers = { Accept: "application/json" };
      if (token) headers.Authorization = `Bearer ${token}`;
      let resp;
      try {
        resp = await fetch(apiUrl(path, query), {
          method,
          headers,
          cache: "no-store",
          credentials: "omit",
        });
      } catch (_) {
        throw new ApiError(0, null, NO_ANSWER);
      }
      const text = await resp.text();
      if (resp.status === 401) {
        await needToken();
        continue;
      }
      return parsed(resp.status, text);
    }
  }

  // An upload with its progress (fetch cannot report an upload's progress).
  function xhrSend(method, url, body, onProgress) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open(method, url);
      xhr.setRequestHeader("Accept", "application/json");
      if (token) xhr.setRequestHeader("Authorization", `Bearer ${token}`);
      xhr.upload.addEventListener("progress", (ev) => {
        if (ev.lengthComputable) onProgress(ev.loaded, ev.total);
      });
      xhr.addEventListener("load", () => resolve({ status: xhr.status, text: xhr.responseText }));
      xhr.addEventListener("error", () =>
        reject(new ApiError(0, null, "The upload broke off: " + NO_ANSWER)),
      );
      xhr.addEventListener("abort", () => reject(new ApiError(0, null, "The upload was stopped.")));
      xhr.send(body);
    });
  }

  async function upload(method, path, query, makeBody, onProgress) {
    for (;;) {
      const { status, text } = await xhrSend(method, apiUrl(path, query), makeBody(), onProgress);
      if (status === 401) {
        await needToken();
        continue;
      }
      return parsed(status, text);
    }
  }

  // -- the access token form: every request that met a 401 waits here, then retries

  function needToken() {
    if (!tokenWait) {
      let resolve;
      const promise = new Promise((r) => {
        resolve = r;
      });
      tokenWait = { promise, resolve };
      // A token was sent and refused: say so (the API's own words are about headers).
      showAuth(token ? "That token was not accepted. Check it and try again." : "");
    }
    return tokenWait.promise;
  }

  function showAuth(message) {
    document.body.classList.add("needs-token");
    $("session").hidden = true;
    $("auth").hidden = false;
    const input = $("auth-token");
    input.value = "";
    setFieldError("auth-token", message);
    $("auth-h").focus();
  }

  function onTokenSubmit(ev) {
    ev.preventDefault();
    const value = $("auth-token").value.trim();
    if (!value) {
      setFieldError("auth-token", "Enter the access token.");
      $("auth-token").focus();
      return;
    }
    token = value;
    sessionStorage.setItem(TOKEN_KEY, token);
    setFieldError("auth-token", "");
    $("auth").hidden = true;
    document.body.classList.remove("needs-token");
    showSession();
    const waiting = tokenWait;
    tokenWait = null;
    if (waiting) waiting.resolve();
    const heading = current && $(`${current}-h`);
    if (heading) heading.focus();
  }

  function showSession() {
    $("session").hidden = !token;
  }

  function forgetToken() {
    token = "";
    sessionStorage.removeItem(TOKEN_KEY);
    showSession();
    stopWatching();
    stopImportPoll();
    enter(current); // asks again, and so shows the token form if hlrd wants one
  }

  // -- errors next to fields and in alert boxes

  function setFieldError(inputId, message) {
    const input = $(inputId);
    const box = $(`${inputId}-error`);
    if (!input || !box) return;
    if (message) {
      box.setAttribute("role", "alert");
      box.textContent = message;
      box.hidden = false;
      input.setAttribute("aria-invalid", "true");
    } else {
      box.textContent = "";
      box.hidden = true;
      input.removeAttribute("aria-invalid");
    }
  }

  function setAlert(id, message) {
    const box = $(id);
    box.textContent = message || "";
    box.hidden = !message;
  }

  function clearForm(form, alertId) {
    for (const box of form.querySelectorAll(".field-error")) {
      box.hidden = true;
      box.textContent = "";
    }
    for (const input of form.querySelectorAll("[aria-invalid]"))
      input.removeAttribute("aria-invalid");
    if (alertId) setAlert(alertId, "");
  }

  // The API's error where it belongs: next to the field it names, else in the alert.
  function showError(err, fields, alertId) {
    const inputId = err.field && fields[err.field];
    if (inputId && $(inputId)) {
      setFieldError(inputId, err.message);
      $(inputId).focus();
    } else {
      setAlert(alertId, err.message || String(err));
    }
  }

  // -- sections (the hash names one; nothing else ever goes in the URL)

  let current = null;

  function route(focus) {
    const wanted = location.hash.replace(/^#/, "");
    show(SECTIONS.includes(wanted) ? wanted : "wash", focus);
  }

  function show(name, focus) {
    if (current !== name) {
      leave(current);
      current = name;
      for (const section of document.querySelectorAll("main > .section")) {
        section.hidden = section.dataset.section !== name;
      }
      for (const tab of document.querySelectorAll(".tabs a")) {
        if (tab.dataset.section === name) tab.setAttribute("aria-current", "page");
        else tab.removeAttribute("aria-current");
      }
      document.title = `${$(`${name}-h`).textContent} · hlrd`;
      enter(name);
    }
    if (focus && !document.body.classList.contains("needs-token")) {
      window.scrollTo(0, 0);
      $(`${name}-h`).focus();
    }
  }

  function enter(name) {
    if (name === "wash") {
      loadJobs();
      if (job.data && MOVING.has(job.data.state)) refreshJob();
    } else if (name === "lists") {
      loadLists();
      if (imp.data && !imp.finished) pollImport();
    }
  }

  function leave(name) {
    if (name === "wash") stopWatching();
    else if (name === "lists") stopImportPoll();
  }

  // -- policies (both selects)

  let policies = { default: "default", policies: [{ name: "default", version: "" }] };

  async function loadPolicies() {
    try {
      const got = await api("GET", "/v1/policies");
      if (got && Array.isArray(got.policies) && got.policies.length) policies = got;
    } catch (err) {
      // Without /v1/policies (an older hlrd) only "default" is offered.
      if (err.status !== 404) {
        const message = `The list of policies could not be read: ${err.message}`;
        setAlert("up-error", message);
        setAlert("check-error", message);
      }
    }
    for (const select of document.querySelectorAll(".policy-select")) {
      const chosen = select.value;
      fill(
        select,
        ...policies.policies.map((p) =>
          h("option", {
            value: p.name,
            text: `${p.name}${p.version ? ` (version ${p.version})` : ""}${p.name === policies.default ? " — default" : ""}`,
          }),
        ),
      );
      select.value = policies.policies.some((p) => p.name === chosen) ? chosen : policies.default;
      describePolicy(select);
    }
  }

  function describePolicy(select) {
    const hint = $(`${select.id}-hint`);
    const p = policies.policies.find((x) => x.name === select.value);
    if (!hint) return;
    const parts = [];
    if (p && Array.isArray(p.block_zones)) {
      const zones = p.block_zones;
      if (zones.includes("EEA") && zones.includes("NON_EEA")) parts.push("blocks every roamer");
      else if (zones.includes("NON_EEA")) parts.push("blocks roaming outside the EEA");
      else if (zones.includes("EEA")) parts.push("blocks roaming inside the EEA");
      else parts.push("does not block roaming");
    }
    if (p && "consent" in p)
      parts.push(p.consent ? `needs consent for ${channel(p.consent)}` : "needs no consent");
    if (p && "calling_hours" in p)
      parts.push(p.calling_hours ? "applies calling hours" : "no calling hours");
    if (p && "lists" in p) {
      if (p.lists === null) parts.push("consults every do-not-call list");
      else if (!p.lists.length) parts.push("consults no do-not-call list");
      else parts.push(`consults ${p.lists.join(", ")}`);
    }
    hint.textContent = parts.length ? `This policy ${parts.join("; ")}.` : "";
  }

  // -- 1. washing a list

  const job = { id: null, data: null, es: null, timer: null, polling: false };

  const JOB_STATES = {
    previewing: ["Previewing", "info", "Reading the file to preview it. Nothing is spent."],
    ready: [
      "Ready to start",
      "info",
      "Preview ready; nothing has been spent. Check it, then start the wash.",
    ],
    running: ["Washing", "info", "Washing: every number goes through the compliance gate."],
    paused: ["Paused", "warn", "Paused. Resume to continue where it stopped."],
    cancelled: ["Cancelled", "warn", "The wash was cancelled. It has no results to download."],
    done: ["Done", "ok", "Done: every row has been checked. The results are below."],
    failed: ["Failed", "bad", "The wash failed."],
  };

  const UPLOAD_FIELDS = {
    column: "up-column",
    body: "up-file",
    file: "up-file",
    name: "up-name",
    policy: "up-policy",
  };

  async function onUpload(ev) {
    ev.preventDefault();
    const form = ev.currentTarget;
    clearForm(form, "up-error");
    const file = $("up-file").files[0];
    if (!file) {
      setFieldError("up-file", "Choose the CSV file to wash.");
      $("up-file").focus();
      return;
    }
    const query = {
      name: $("up-name").value.trim(),
      policy: $("up-policy").value,
      column: $("up-column").value.trim(),
    };
    const submit = $("up-submit");
    submit.disabled = true;
    $("up-transfer").hidden = false;
    transfer("up", 0, file.size);
    try {
      const data = await upload(
        "POST",
        "/v1/jobs",
        query,
        () => {
          const body = new FormData();
          body.append("file", file, file.name);
          return body;
        },
        (done, total) => transfer("up", done, total),
      );
      transfer("up", file.size, file.size);
      $("up-transfer").hidden = true;
      const policy = $("up-policy").value;
      form.reset();
      $("up-policy").value = policy;
      openJob(data, true);
      loadJobs();
    } catch (err) {
      $("up-transfer").hidden = true;
      showError(err, UPLOAD_FIELDS, "up-error");
    } finally {
      submit.disabled = false;
    }
  }

  function transfer(prefix, done, total) {
    const bar = $(`${prefix}-bar`);
    bar.max = total > 0 ? total : 1;
    bar.value = Math.min(done, bar.max);
    $(`${prefix}-bar-text`).textContent =
      `${fmtBytes(done)} of ${fmtBytes(total)} (${fmtPercent(done, total)})`;
  }

  // hlrd names a job by its id when the upload gave no name.
  const named = (j) => Boolean(j.name) && j.name !== j.id;

  function openJob(data, focus) {
    stopWatching();
    job.id = data.id;
    job.data = null;
    job.polling = false;
    showJob(data);
    $("job").hidden = false;
    if (focus) {
      $("job").scrollIntoView({ block: "start" });
      $("job-h").focus();
    }
    watch();
  }

  async function openJobById(id) {
    setAlert("jobs-error", "");
    try {
      openJob(await api("GET", `/v1/jobs/${encodeURIComponent(id)}`), true);
    } catch (err) {
      setAlert("jobs-error", err.message);
    }
  }

  async function refreshJob() {
    const id = job.id;
    if (!id) return;
    try {
      const data = await api("GET", `/v1/jobs/${encodeURIComponent(id)}`);
      if (job.id !== id) return;
      showJob(data);
      if (current === "wash" && MOVING.has(data.state) && !job.es && !job.timer) watch();
    } catch (err) {
      if (job.id === id) setAlert("job-error", err.message);
    }
  }

  function showJob(data) {
    const before = job.data ? job.data.state : null;
    job.data = data;
    const [label, tone, status] = JOB_STATES[data.state] || [data.state, "info", ""];
    $("job-name").textContent = named(data) ? `Job “${data.name}”` : "Unnamed job";
    const badge = $("job-state");
    badge.textContent = label;
    badge.className = `badge badge-${tone}`;
    fill(
      $("job-meta"),
      h("span", {}, "Policy ", h("strong", { text: data.policy })),
      " · ",
      h("span", { text: `uploaded ${fmtTime(data.created_at)}` }),
      data.finished_at ? h("span", { text: ` · finished ${fmtTime(data.finished_at)}` }) : null,
      " · ",
      h("span", {}, "id ", h("code", { text: data.id })),
    );
    if (before !== data.state) $("job-status").textContent = status;
    setAlert(
      "job-error",
      data.state === "failed" ? `The wash failed: ${data.error || "no reason given"}.` : "",
    );
    showLayout(data.layout || {});
    showPreview(data);
    const started = data.started_at || ["running", "paused", "done"].includes(data.state);
    $("job-run").hidden = !started;
    showProgress(data.progress);
    $("job-start").hidden = data.state !== "ready";
    $("job-pause").hidden = data.state !== "running";
    $("job-resume").hidden = data.state !== "paused";
    $("job-cancel").hidden = !["ready", "running", "paused"].includes(data.state);
    showSummary(data);
    if (before && before !== data.state && !MOVING.has(data.state)) loadJobs();
  }

  const DELIMITERS = { ",": "comma ( , )", ";": "semicolon ( ; )", "\t": "tab" };

  function detectedBy(how) {
    if (!how) return "—";
    const [kind, what] = how.split(/:(.*)/s);
    if (kind === "header") return `by its header, a usual name for a phone column (“${what}”)`;
    if (kind === "fuzzy")
      return `by its header “${what}”, close to a usual name for a phone column`;
    if (kind === "vicidial")
      return "as VICIdial's list-loader layout (country code and phone number columns)";
    if (kind === "chosen") return "as you chose it";
    if (kind === "content") return "by its content: its cells look like phone numbers";
    return how;
  }

  function showLayout(layout) {
    const header = layout.header;
    const position = typeof layout.phone_column === "number" ? layout.phone_column + 1 : null;
    const rows = [
      ["Separator", DELIMITERS[layout.delimiter] || layout.delimiter || "—", "layout-delimiter"],
      [
        "Header row",
        Array.isArray(header)
          ? `Yes — ${header.length} columns`
          : header
            ? "Yes"
            : "No: every row is data",
        "layout-header",
      ],
      [
        "Phone column",
        layout.phone_column_name
          ? `“${layout.phone_column_name}”${position ? `, column ${position}` : ""}`
          : "—",
        "layout-column",
      ],
      ["Found", detectedBy(layout.detected_by), "layout-detected"],
    ];
    const columns = Array.isArray(header)
      ? h(
          "ol",
          { class: "columns", id: "layout-columns" },
          header.map((name, i) =>
            h(
              "li",
              { class: i === layout.phone_column ? "phone" : null },
              name || `(column ${i + 1} has no name)`,
              i === layout.phone_column
                ? h("span", { class: "col-mark", text: " — the phone column" })
                : null,
            ),
          ),
        )
      : null;
    fill(
      $("job-layout"),
      rows.flatMap(([term, value, id]) => [h("dt", { text: term }), h("dd", { id, text: value })]),
      columns ? [h("dt", { text: "Columns" }), h("dd", {}, columns)] : null,
    );
  }

  function showPreview(data) {
    const p = data.preview;
    $("job-preview-note").textContent = ["previewing", "ready"].includes(data.state)
      ? "— nothing spent yet"
      : "— what was expected before the wash";
    $("job-previewing").hidden = !(data.state === "previewing" && !p);
    const table = $("job-preview");
    table.hidden = !p;
    if (!p) return;
    const invalid = Object.entries(p.invalid || {}).sort((a, b) => b[1] - a[1]);
    const invalidTotal = invalid.reduce((sum, [, n]) => sum + n, 0);
    const row = (label, value, id, note, cls) =>
      h(
        "tr",
        { class: cls },
        h("th", { scope: "row" }, label, note ? h("span", { class: "note", text: note }) : null),
        h("td", { class: "num", id, text: value }),
      );
    const rows = [
      row("Rows in the file", fmtInt(p.rows), "pv-rows"),
      row("Valid numbers", fmtInt(p.valid), "pv-valid"),
      row("Invalid rows", fmtInt(invalidTotal), "pv-invalid", "never called, not looked up"),
      ...invalid.map(([code, n]) =>
        row(reason(code).text, fmtInt(n), `pv-invalid-${code}`, null, "sub"),
      ),
      row(
        "Duplicates",
        fmtInt(p.duplicates),
        "pv-duplicates",
        p.duplicates_uncounted_after
          ? `counted among the first ${fmtInt(p.duplicates_uncounted_after)} numbers`
          : "answered once",
      ),
      row(
        "Blocked by do-not-call lists",
        fmtInt(p.blocked_by_lists),
        "pv-blocked",
        "no lookup needed",
      ),
      row("Already in the cache", fmtInt(p.cached), "pv-cached", "no cost"),
      row("To be looked up", fmtInt(p.to_look_up), "pv-lookups", "paid lookups"),
      row(
        "Estimated cost",
        p.estimated_cost ? fmtCost(p.estimated_cost) : "—",
        "pv-cost",
        null,
        "total",
      ),
    ];
    table.tBodies[0].replaceChildren(...rows);
  }

  function showProgress(p) {
    if (!p) return;
    const bar = $("job-progress");
    const percent = Math.max(0, Math.min(100, Number(p.percent) || 0));
    bar.value = percent;
    const total = typeof p.rows_total === "number" ? p.rows_total : null;
    $("job-progress-text").textContent =
      total === null
        ? `${fmtInt(p.rows_done)} rows`
        : `${fmtInt(p.rows_done)} of ${fmtInt(total)} rows (${percent.toFixed(1)} %)`;
  }

  // The progress stream; a browser cannot send a header here, so the token goes in the query.
  function watch() {
    stopWatching();
    if (!job.data || !MOVING.has(job.data.state) || current !== "wash") return;
    if (job.polling || typeof EventSource !== "function") {
      job.timer = setTimeout(pollJob, JOB_POLL_MS);
      return;
    }
    const es = new EventSource(withToken(`/v1/jobs/${encodeURIComponent(job.id)}/events`));
    job.es = es;
    es.addEventListener("progress", (ev) => {
      if (job.es !== es) return;
      let p;
      try {
        p = JSON.parse(ev.data);
      } catch (_) {
        return;
      }
      if (!MOVING.has(p.state)) {
        es.close(); // the stream ends here; an EventSource would otherwise reconnect
        job.es = null;
      }
      if (job.data && p.state !== job.data.state) refreshJob();
      else showProgress(p);
    });
    es.addEventListener("error", () => {
      if (job.es !== es) return;
      es.close();
      job.es = null;
      job.polling = true; // the stream broke: ask every second instead
      job.timer = setTimeout(pollJob, JOB_POLL_MS);
    });
  }

  async function pollJob() {
    job.timer = null;
    if (current !== "wash" || !job.id) return;
    await refreshJob();
    if (current === "wash" && job.data && MOVING.has(job.data.state) && !job.timer && !job.es) {
      job.timer = setTimeout(pollJob, JOB_POLL_MS);
    }
  }

  function stopWatching() {
    if (job.es) job.es.close();
    job.es = null;
    if (job.timer) clearTimeout(job.timer);
    job.timer = null;
  }

  async function jobAction(action) {
    setAlert("job-error", "");
    const id = job.id;
    try {
      const data = await api("POST", `/v1/jobs/${encodeURIComponent(id)}/${action}`);
      if (job.id !== id) return;
      showJob(data);
      watch();
    } catch (err) {
      setAlert("job-error", err.message);
    }
  }

  const FILES = {
    "annotated.csv":
      "every row as uploaded, with hlrd's decision, reasons and what the network said",
    "clean.csv": "only the rows that may be called: the list for the dialer",
    "dnc.txt": "the numbers not to call, one a line, for a dialer's do-not-call import",
    "summary.json": "these counts, as JSON",
  };

  function showSummary(data) {
    const box = $("job-summary");
    const s = data.summary;
    box.hidden = !s;
    if (!s) return;
    const cache = s.cache || {};
    const byDecision = s.by_decision || {};
    const callable = byDecision.allow || 0;
    const notNow = Object.entries(byDecision).filter(([d]) => d !== "allow");
    fill(
      $("job-headline"),
      h("strong", { text: `${fmtInt(callable)} of ${fmtInt(s.rows)} rows may be called` }),
      notNow.length
        ? `; ${fmtInt(s.rows - callable)} may not (${notNow
            .map(
              ([d, n]) => `${fmtInt(n)} ${(DECISIONS[d] ? DECISIONS[d].label : d).toLowerCase()}`,
            )
            .join(", ")}).`
        : ".",
    );
    const totals = [
      ["Rows checked", fmtInt(s.rows)],
      ["Answered from the cache (no cost)", fmtInt(cache.hit || 0)],
      ["Looked up on the network", fmtInt(cache.lookup || 0)],
      ["Duplicates (answered once)", fmtInt(cache.duplicate || 0)],
      ["Cost of the lookups", fmtCost(s.cost)],
      ["Time taken", fmtDuration(s.seconds)],
      ["Policy", `${s.policy}`],
    ];
    fill(
      $("job-totals"),
      ...totals.flatMap(([term, value]) => [h("dt", { text: term }), h("dd", { text: value })]),
    );
    const rank = (d) =>
      DECISION_ORDER.includes(d) ? DECISION_ORDER.indexOf(d) : DECISION_ORDER.length;
    const decisions = Object.keys(byDecision).sort(
      (a, b) => rank(a) - rank(b) || a.localeCompare(b),
    );
    chart(
      $("chart-decisions"),
      "Decisions",
      "Rows by decision",
      decisions.map((d) => ({
        label: DECISIONS[d] ? DECISIONS[d].label : d,
        code: d,
        count: byDecision[d],
        cls: `fill-${DECISIONS[d] ? DECISIONS[d].cls : "unknown"}`,
      })),
      s.rows,
    );
    chart(
      $("chart-reasons"),
      "Reasons",
      "Rows by reason (a row can have more than one)",
      sorted(s.by_reason).map(([code, n]) => ({
        label: code === "none" ? "No objection (may be called)" : reason(code).text,
        code,
        count: n,
        cls: code === "none" ? "fill-allow" : "fill-reason",
      })),
      s.rows,
    );
    const checked = Object.values(s.by_country || {}).reduce((a, b) => a + b, 0);
    chart(
      $("chart-countries"),
      "Countries",
      "Looked-up numbers by the number's country",
      sorted(s.by_country).map(([cc, n]) => ({
        label: countryLabel(cc),
        code: cc,
        count: n,
        cls: "fill-neutral",
      })),
      checked,
    );
    const answered = Object.values(s.by_provider || {}).reduce((a, b) => a + b, 0);
    chart(
      $("chart-providers"),
      "Providers",
      "Rows by the provider that answered",
      sorted(s.by_provider).map(([name, n]) => ({
        label: name,
        code: null,
        count: n,
        cls: "fill-neutral",
      })),
      answered,
    );
    fill(
      $("job-downloads"),
      ...Object.entries(data.files || {}).map(([name, path]) =>
        h(
          "li",
          {},
          h("a", {
            href: withToken(path),
            download: `${data.id}-${name}`,
            "data-file": name,
            class: "download",
            text: name,
          }),
          h("span", { class: "download-note", text: ` — ${FILES[name] || ""}` }),
        ),
      ),
    );
  }

  const sorted = (counts) =>
    Object.entries(counts || {}).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));

  // A bar chart that is also a table: screen readers read the table, eyes the bars.
  function chart(figure, title, caption, rows, total) {
    const id = `${figure.id}-caption`;
    const body = rows.length
      ? rows.map((r) => {
          const pct = total > 0 ? (r.count / total) * 100 : 0;
          const fill = h("span", { class: `bar-fill ${r.cls}` });
          fill.style.width = `${Math.max(pct, r.count > 0 ? 0.8 : 0)}%`;
          return h(
            "tr",
            { "data-code": r.code },
            h(
              "th",
              { scope: "row" },
              h("span", { class: "bar-label", text: r.label }),
              h("span", { class: "bar", "aria-hidden": "true" }, fill),
            ),
            h("td", { class: "num count", text: fmtInt(r.count) }),
            h("td", { class: "num share", text: fmtPercent(r.count, total) }),
          );
        })
      : [h("tr", {}, h("td", { colspan: 3, text: "Nothing to show." }))];
    fill(
      figure,
      h(
        "figcaption",
        { id },
        h("strong", { text: title }),
        h("span", { class: "fig-note", text: caption }),
      ),
      h(
        "table",
        { class: "bars", "aria-labelledby": id },
        h(
          "thead",
          { class: "visually-hidden" },
          h(
            "tr",
            {},
            h("th", { scope: "col", text: "Category" }),
            h("th", { scope: "col", text: "Rows" }),
            h("th", { scope: "col", text: "Share" }),
          ),
        ),
        h("tbody", {}, body),
      ),
    );
  }

  // Previous jobs
  let jobsLoading = false;

  async function loadJobs() {
    if (jobsLoading) return;
    jobsLoading = true;
    try {
      const data = await api("GET", "/v1/jobs");
      setAlert("jobs-error", "");
      showJobs(data.jobs || []);
    } catch (err) {
      setAlert("jobs-error", err.message);
    } finally {
      jobsLoading = false;
    }
  }

  function showJobs(jobs) {
    const box = $("jobs-table");
    if (!jobs.length) {
      fill(box, h("p", { class: "muted", text: "No jobs yet. Upload a list above." }));
      return;
    }
    const head = ["Name", "Uploaded", "Policy", "State", "Rows", "Actions"];
    fill(
      box,
      h(
        "table",
        { class: "data stack", "aria-labelledby": "jobs-h" },
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            head.map((t) => h("th", { scope: "col", text: t })),
          ),
        ),
        h(
          "tbody",
          {},
          jobs.map((j) => {
            const [label, tone] = JOB_STATES[j.state] || [j.state, "info"];
            const rows = (j.progress && j.progress.rows_total) ?? (j.preview && j.preview.rows);
            const name = named(j) ? j.name : "(no name)";
            const actionsBox = h("div", { class: "cell" });
            const actions = h("td", { "data-label": "Actions", class: "row-actions" }, actionsBox);
            const showActions = () =>
              fill(
                actionsBox,
                h("button", {
                  type: "button",
                  text: "Open",
                  "aria-label": `Open job ${name}`,
                  onclick: () => openJobById(j.id),
                }),
                h("button", {
                  type: "button",
                  class: "danger-outline",
                  text: "Delete",
                  "aria-label": `Delete job ${name}`,
                  onclick: () => {
                    const confirm = h("button", {
                      type: "button",
                      class: "danger",
                      text: "Yes, delete",
                      "aria-label": `Yes, delete job ${name} and its files`,
                      onclick: () => deleteJob(j.id),
                    });
                    fill(
                      actionsBox,
                      h("span", { class: "confirm-text", text: "Delete the job and its files?" }),
                      confirm,
                      h("button", {
                        type: "button",
                        text: "Keep",
                        onclick: () => {
                          showActions();
                          actionsBox.querySelector("button").focus();
                        },
                      }),
                    );
                    confirm.focus();
                  },
                }),
              );
            showActions();
            return h(
              "tr",
              { "data-job": j.id, class: j.id === job.id ? "current" : null },
              cell(
                "td",
                "Name",
                {},
                h("span", { class: "job-title", text: name }),
                h("code", { class: "job-id", text: j.id }),
              ),
              cell("td", "Uploaded", {}, fmtTime(j.created_at)),
              cell("td", "Policy", {}, j.policy),
              cell("td", "State", {}, h("span", { class: `badge badge-${tone}`, text: label })),
              cell("td", "Rows", { class: "num" }, fmtInt(rows)),
              actions,
            );
          }),
        ),
      ),
    );
  }

  async function deleteJob(id) {
    setAlert("jobs-error", "");
    try {
      await api("DELETE", `/v1/jobs/${encodeURIComponent(id)}`);
      if (job.id === id) {
        stopWatching();
        job.id = null;
        job.data = null;
        $("job").hidden = true;
      }
      await loadJobs();
      $("jobs-h").setAttribute("tabindex", "-1");
      $("jobs-h").focus();
    } catch (err) {
      setAlert("jobs-error", err.message);
    }
  }

  // -- 2. checking a number

  const CHECK_FIELDS = { number: "check-number", policy: "check-policy" };
  let checking = 0;

  async function onCheck(ev) {
    ev.preventDefault();
    const form = ev.currentTarget;
    clearForm(form, "check-error");
    const number = $("check-number").value.trim();
    if (!number) {
      setFieldError("check-number", "Enter the phone number to check.");
      $("check-number").focus();
      return;
    }
    const policy = $("check-policy").value;
    const mine = ++checking;
    $("check-submit").disabled = true;
    $("check-announce").textContent = "";
    try {
      const data = await api("GET", `/v1/check/${encodeURIComponent(number)}`, { policy });
      if (mine !== checking) return;
      showCheck(data, number);
    } catch (err) {
      if (mine !== checking) return;
      $("check-result").hidden = true;
      showError(err, CHECK_FIELDS, "check-error");
    } finally {
      if (mine === checking) $("check-submit").disabled = false;
    }
  }

  const REACHABILITY = {
    CONNECTED: "Reachable: the phone is on the network",
    ABSENT: "Not reachable: switched off or out of coverage",
    INVALID: "Not in service: no such subscriber",
    RESTRICTED: "Barred, or the service is not provisioned",
    UNKNOWN: "Unknown",
  };
  const ZONES = {
    DOMESTIC: "Home country",
    EEA: "Inside the EEA (roam-like-at-home)",
    NON_EEA: "Outside the EEA",
    UNKNOWN: "Unknown",
  };
  const OUTCOMES = {
    ok: "Complete answer",
    partial: "Partial answer (not everything was known)",
    failed: "No usable answer",
    throttled: "Refused (rate limit)",
    timeout: "No answer in time",
  };

  function network(n) {
    if (!n || (!n.country && !n.mccmnc)) return "Unknown";
    const parts = [];
    if (n.country) parts.push(countryLabel(n.country));
    if (n.mccmnc) parts.push(`network ${n.mccmnc}`);
    return parts.join(", ");
  }

  function verdictText(d) {
    const info = DECISIONS[d.decision] || DECISIONS.unknown;
    if (d.decision === "unknown")
      return d.call ? "Cannot tell — the policy lets the dialer call" : "Cannot tell — do not call";
    return info.title;
  }

  function showCheck(d, asked) {
    const info = DECISIONS[d.decision] || DECISIONS.unknown;
    const look = d.lookup;
    const number = look ? e164(look.msisdn) : asked;
    const policyName = `“${d.policy.name}” (version ${d.policy.version})`;
    let sub;
    if (d.decision === "allow")
      sub = `Nothing in policy ${policyName} objects to calling ${number} now.`;
    else if (d.decision === "block")
      sub = `Policy ${policyName} does not allow calling ${number}, for the reasons below.`;
    else if (d.decision === "defer")
      sub = d.retry_after
        ? `Under policy ${policyName}, ${number} may be called from ${fmtTime(d.retry_after)}: check again then.`
        : `Not now, and no allowed time within the next 14 days under policy ${policyName}.`;
    else
      sub = d.call
        ? `hlrd could not tell. Policy ${policyName} lets the dialer call in that case (it does not fail closed).`
        : `hlrd could not tell, and policy ${policyName} says not to call then (it fails closed).`;

    const reasons = d.reasons.map((code) => reasonItem(code, look));
    const warnings = d.warnings.map((code) => reasonItem(code, look));
    const facts = look ? lookupFacts(look) : null;
    const record = [
      ["Number", number],
      ["Policy", `${d.policy.name}, version ${d.policy.version}`],
      ["Checked at", fmtTime(new Date().toISOString())],
      ["Decision id (audit trail)", h("code", { id: "check-decision-id", text: d.decision_id })],
      ["Consent record", d.consent_id ? h("code", { text: d.consent_id }) : "None relied on"],
    ];
    if (d.decision === "defer") {
      record.push([
        "Check again after",
        h("span", {
          id: "check-retry-after",
          text: d.retry_after
            ? `${fmtTime(d.retry_after)} (${d.retry_after})`
            : "No time within 14 days",
        }),
      ]);
    }
    const box = $("check-result");
    fill(
      box,
      h(
        "div",
        {
          class: `card verdict verdict-${info.cls}`,
          id: "verdict",
          "data-decision": d.decision,
          "data-call": String(d.call),
        },
        h("p", { class: "verdict-kicker", text: "Verdict" }),
        h(
          "h2",
          { class: "verdict-title", id: "verdict-title" },
          h("span", { class: "verdict-icon", "aria-hidden": "true", text: info.icon }),
          h("span", { text: verdictText(d) }),
        ),
        h("p", { class: "verdict-sub", text: sub }),
      ),
      h(
        "div",
        { class: "card" },
        h("h3", { text: d.decision === "allow" ? "Why it may be called" : "Why" }),
        reasons.length
          ? h("ul", { class: `reasons reasons-${info.cls}`, id: "check-reasons" }, reasons)
          : h("p", {
              id: "check-reasons-none",
              text: "Nothing stops the call: the person was not erased, the number is on no list the policy consults, and the lookup shows nothing the policy blocks.",
            }),
        warnings.length
          ? [
              h("h3", { text: "Warnings (they do not change the decision)" }),
              h("ul", { class: "reasons warnings", id: "check-warnings" }, warnings),
            ]
          : null,
        h("h3", { text: "What the network said" }),
        facts
          ? h("dl", { class: "facts facts-wide", id: "check-lookup" }, facts)
          : h(
              "p",
              { id: "check-no-lookup" },
              "No lookup was made",
              d.lookup_skipped ? `: ${d.lookup_skipped}` : "",
              ". This check cost nothing.",
            ),
        h("h3", { text: "Record" }),
        h(
          "dl",
          { class: "facts facts-wide", id: "check-record" },
          record.flatMap(([t, v]) => [h("dt", { text: t }), h("dd", {}, v)]),
        ),
      ),
    );
    box.hidden = false;
    const words = d.reasons.map((c) => reason(c, look).text);
    $("check-announce").textContent =
      `${verdictText(d)}.${words.length ? ` ${words.join("; ")}.` : ""}`;
  }

  function reasonItem(code, look) {
    const r = reason(code, look);
    return h(
      "li",
      { "data-code": code },
      h("span", { class: "reason-text", text: r.text }),
      " ",
      h("code", { class: "reason-code", text: code }),
      r.todo ? h("span", { class: "reason-todo", text: `What to do: ${r.todo}` }) : null,
    );
  }

  function lookupFacts(l) {
    const cache = l.cache || {};
    let roaming = "Unknown";
    if (l.roaming === "ROAMING")
      roaming = `Abroad, in ${countryLabel(l.visited_country || l.serving_country)}`;
    else if (l.roaming === "NOT_ROAMING")
      roaming = `At home${l.serving_country ? `, in ${countryLabel(l.serving_country)}` : ""}`;
    let answer;
    if (cache.hit)
      answer = `From hlrd's cache, answered ${fmtAge(cache.age_s)} ago${cache.stale ? " — stale: served because no provider answered" : ""}`;
    else
      answer = `Fresh lookup${l.timings && typeof l.timings.total_ms === "number" ? ` (${Math.round(l.timings.total_ms)} ms)` : ""}`;
    let ported = "Unknown";
    if (l.ported === true) ported = `Yes — now with ${network(l.subscription_network)}`;
    else if (l.ported === false) ported = "No";
    const rows = [
      ["Reachability", REACHABILITY[l.reachability] || l.reachability, "fact-reachability"],
      ["Roaming", roaming, "fact-roaming"],
      ["Zone", ZONES[l.zone] || l.zone, "fact-zone"],
      ["Number's country and network", network(l.home_network), "fact-home"],
      ["Serving network", network(l.serving_network), "fact-serving"],
      ["Ported", ported, "fact-ported"],
      ["Answer", answer, "fact-answer"],
      [
        "Provider",
        `${l.provider}${l.transport && l.transport !== "none" ? ` (${l.transport.toUpperCase()})` : ""}`,
        "fact-provider",
      ],
      ["Outcome", OUTCOMES[l.outcome] || l.outcome, "fact-outcome"],
    ];
    if (l.map_error_name)
      rows.push([
        "Network error",
        `${l.map_error_name} (MAP error ${l.map_error})`,
        "fact-map-error",
      ]);
    if (l.error) rows.push(["Problem", l.error, "fact-error"]);
    return rows.flatMap(([t, v, id]) => [h("dt", { text: t }), h("dd", { id, text: v })]);
  }

  // -- 3. do-not-call lists

  const FORMATS = {
    lines: "One number a line",
    csv: "CSV",
    tps: "UK TPS / CTPS",
    us_ftc: "US National DNC (FTC)",
    rpo: "Italy RPO",
    own: "Own list (number by number)",
  };

  async function loadLists() {
    try {
      const data = await api("GET", "/v1/lists");
      setAlert("lists-error", "");
      showLists(data.lists || []);
    } catch (err) {
      setAlert("lists-error", err.message);
    }
  }

  function showLists(lists) {
    const box = $("lists-table");
    if (!lists.length) {
      fill(box, h("p", { class: "muted", text: "No lists." }));
      return;
    }
    const head = [
      "List",
      "Format",
      "Numbers",
      "Version",
      "Imported",
      "Age",
      "Freshness",
      "Stale after",
    ];
    fill(
      box,
      h(
        "table",
        { class: "data stack", id: "lists" },
        h("caption", { class: "visually-hidden", text: "Do-not-call lists in force" }),
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            head.map((t) => h("th", { scope: "col", text: t })),
          ),
        ),
        h(
          "tbody",
          {},
          lists.map((l) => {
            const own = l.format === "own";
            const detail = [];
            if (typeof l.rows === "number") detail.push(`${fmtInt(l.rows)} rows read`);
            if (l.invalid) detail.push(`${fmtInt(l.invalid)} not numbers`);
            if (l.changes) detail.push(`${fmtInt(l.changes)} change lists applied`);
            const fresh = l.stale
              ? h("span", { class: "badge badge-bad", text: "STALE" })
              : h("span", { class: "badge badge-ok", text: "Fresh" });
            return h(
              "tr",
              { "data-list": l.name, class: l.stale ? "stale" : null },
              cell(
                "th",
                "List",
                { scope: "row" },
                h("code", { class: "list-name", text: l.name }),
                own ? h("span", { class: "note", text: "your own list" }) : null,
              ),
              cell("td", "Format", {}, FORMATS[l.format] || l.format),
              cell(
                "td",
                "Numbers",
                { class: "num" },
                h("span", { class: "list-numbers", text: fmtInt(l.numbers) }),
                detail.length ? h("span", { class: "note", text: detail.join(", ") }) : null,
              ),
              cell("td", "Version", {}, own ? "live" : l.version || "—"),
              cell("td", "Imported", {}, own ? "changed number by number" : fmtTime(l.imported_at)),
              cell(
                "td",
                "Age",
                {},
                typeof l.age_days === "number" ? `${l.age_days.toFixed(1)} days` : "—",
              ),
              cell(
                "td",
                "Freshness",
                { class: "list-freshness" },
                fresh,
                l.stale
                  ? h("span", {
                      class: "note strong",
                      text: "past its limit: import the current file",
                    })
                  : null,
              ),
              cell(
                "td",
                "Stale after",
                {},
                own || typeof l.max_age_days !== "number" ? "never" : fmtDays(l.max_age_days),
              ),
            );
          }),
        ),
      ),
    );
  }

  const imp = { data: null, timer: null, finished: true };
  const IMPORT_FIELDS = {
    name: "im-name",
    format: "im-format",
    region: "im-region",
    column: "im-column",
    delimiter: "im-delimiter",
    version: "im-version",
    max_age_days: "im-max-age",
    body: "im-file",
    change: "im-format",
  };

  async function onImport(ev) {
    ev.preventDefault();
    const form = ev.currentTarget;
    clearForm(form, "im-error");
    $("im-status").textContent = "";
    $("im-status").classList.remove("done");
    const name = $("im-name").value.trim();
    const file = $("im-file").files[0];
    let bad = false;
    if (!name) {
      setFieldError("im-name", "Enter the list's name.");
      bad = true;
    }
    if (!file) {
      setFieldError("im-file", "Choose the file to import.");
      bad = true;
    }
    if (bad) {
      form.querySelector("[aria-invalid]").focus();
      return;
    }
    const change = form.querySelector('input[name="im-change"]:checked');
    const query = {
      format: $("im-format").value,
      region: $("im-region").value.trim().toUpperCase(),
      column: $("im-column").value.trim(),
      delimiter: $("im-delimiter").value,
      version: $("im-version").value.trim(),
      max_age_days: $("im-max-age").value.trim(),
      change: change ? change.value : "",
    };
    stopImportPoll();
    $("im-submit").disabled = true;
    $("im-bar-label").textContent = "Upload";
    $("im-transfer").hidden = false;
    transfer("im", 0, file.size);
    try {
      const data = await upload(
        "POST",
        `/v1/lists/${encodeURIComponent(name)}/import`,
        query,
        () => file,
        (done, total) => transfer("im", done, total),
      );
      imp.data = data;
      imp.finished = false;
      $("im-status").textContent =
        `Received ${fmtBytes(data.bytes_total)}. Importing “${data.list}”…`;
      showImport(data);
      pollImport();
    } catch (err) {
      $("im-transfer").hidden = true;
      $("im-submit").disabled = false;
      showError(err, IMPORT_FIELDS, "im-error");
    }
  }

  function showImport(data) {
    $("im-bar-label").textContent = data.state === "done" ? "Imported" : "Importing";
    transfer("im", data.bytes_read || 0, data.bytes_total || 0);
  }

  async function pollImport() {
    imp.timer = null;
    if (!imp.data || current !== "lists") return;
    const id = imp.data.id;
    let data;
    try {
      data = await api("GET", `/v1/lists/imports/${encodeURIComponent(id)}`);
    } catch (err) {
      imp.finished = true;
      $("im-submit").disabled = false;
      setAlert("im-error", err.message);
      return;
    }
    if (!imp.data || imp.data.id !== id) return;
    imp.data = data;
    showImport(data);
    if (data.state === "done" || data.state === "failed") {
      imp.finished = true;
      $("im-submit").disabled = false;
      if (data.state === "done") {
        const info = data.info || {};
        const parts = [`${fmtInt(info.numbers)} numbers listed`];
        if (typeof info.rows === "number") parts.push(`from ${fmtInt(info.rows)} rows`);
        if (info.invalid) parts.push(`${fmtInt(info.invalid)} rows were not numbers`);
        $("im-status").textContent = `Imported “${data.list}”: ${parts.join(", ")}. In force now.`;
        $("im-status").classList.add("done");
        $("import-form").reset();
      } else {
        $("im-transfer").hidden = true;
        $("im-status").textContent = "";
        setAlert(
          "im-error",
          `The import of “${data.list}” failed: ${data.error || "no reason given"}`,
        );
      }
      loadLists();
      return;
    }
    if (current === "lists") imp.timer = setTimeout(pollImport, IMPORT_POLL_MS);
  }

  function stopImportPoll() {
    if (imp.timer) clearTimeout(imp.timer);
    imp.timer = null;
  }

  // -- 4. erasure and objection

  async function onErase(ev) {
    ev.preventDefault();
    const form = ev.currentTarget;
    clearForm(form, "erase-error");
    const number = $("erase-number").value.trim();
    let bad = false;
    if (!number) {
      setFieldError("erase-number", "Enter the phone number to erase.");
      bad = true;
    }
    if (!$("erase-confirm").checked) {
      setFieldError(
        "erase-confirm",
        "Tick the box to confirm that you verified the person's identity.",
      );
      bad = true;
    }
    if (bad) {
      form.querySelector("[aria-invalid]").focus();
      return;
    }
    $("erase-submit").disabled = true;
    try {
      const data = await api("DELETE", `/v1/subjects/${encodeURIComponent(number)}`);
      showErasure(data, number);
      form.reset();
    } catch (err) {
      showError(err, { number: "erase-number" }, "erase-error");
    } finally {
      $("erase-submit").disabled = false;
    }
  }

  function showErasure(data, number) {
    const r = data.removed || {};
    const yesNo = (n) => (n ? "Yes" : "None was kept");
    const rows = [
      ["Cached lookup answers removed", fmtInt(r.cached_answers), "er-cached"],
      ["Own do-not-call list entry removed", yesNo(r.own_list_entries), "er-own"],
    ];
    if ("consent_records" in r)
      rows.push(["Consent records deleted", fmtInt(r.consent_records), "er-consent"]);
    if (r.consent_records_held) {
      rows.push([
        "Consent records kept under the legal hold",
        `${fmtInt(r.consent_records_held)}, unused, deleted on ${fmtTime(r.held_until)}`,
        "er-held",
      ]);
    }
    if ("audit_records_unlinked" in r) {
      rows.push([
        "Audit records unlinked from the number",
        `${fmtInt(r.audit_records_unlinked)} (the decisions stay, and the audit chain still verifies)`,
        "er-audit",
      ]);
    }
    if ("job_rows" in r)
      rows.push(["Rows removed from washing jobs' files", fmtInt(r.job_rows), "er-jobs"]);
    const box = $("erase-receipt");
    fill(
      box,
      h("h3", { text: "Erasure receipt" }),
      h(
        "p",
        { class: "receipt-lead" },
        h("strong", { text: `${number} was erased` }),
        ` on ${fmtTime(new Date().toISOString())}.`,
      ),
      h(
        "dl",
        { class: "facts facts-wide" },
        rows.flatMap(([t, v, id]) => [h("dt", { text: t }), h("dd", { id, text: v })]),
      ),
      h(
        "p",
        {},
        data.suppressed
          ? "Only a keyed hash of the number is kept (the suppression token): every check of it now answers “do not call” with the reason “erased”, without a lookup. Nothing can undo this."
          : "",
      ),
    );
    box.hidden = false;
    box.focus();
  }

  async function onObject(ev) {
    ev.preventDefault();
    const form = ev.currentTarget;
    clearForm(form, "object-error");
    const number = $("object-number").value.trim();
    if (!number) {
      setFieldError("object-number", "Enter the phone number of the person who objects.");
      $("object-number").focus();
      return;
    }
    $("object-submit").disabled = true;
    try {
      const data = await api("POST", `/v1/subjects/${encodeURIComponent(number)}/objection`);
      const entry = data.entry || {};
      const box = $("object-receipt");
      fill(
        box,
        h("h3", { text: "Objection recorded" }),
        h(
          "p",
          {},
          h("strong", { text: `${number} is on your own do-not-call list` }),
          entry.expires_at ? ` until ${fmtTime(entry.expires_at)}.` : " for good (no end date).",
        ),
        h(
          "dl",
          { class: "facts facts-wide" },
          h("dt", { text: "Reason" }),
          h("dd", { id: "ob-reason", text: entry.reason || "—" }),
          h("dt", { text: "Recorded by" }),
          h("dd", { text: entry.source || "—" }),
          h("dt", { text: "Since" }),
          h("dd", { text: fmtTime(entry.added_at) }),
        ),
        h("p", {
          text: "Every policy that consults the own list now answers “do not call” (reason: on your own do-not-call list). Nothing was deleted.",
        }),
      );
      box.hidden = false;
      box.focus();
      form.reset();
    } catch (err) {
      showError(err, { number: "object-number" }, "object-error");
    } finally {
      $("object-submit").disabled = false;
    }
  }

  // -- start

  function init() {
    $("auth-form").addEventListener("submit", onTokenSubmit);
    $("forget-token").addEventListener("click", forgetToken);
    $("upload-form").addEventListener("submit", onUpload);
    $("job-start").addEventListener("click", () => jobAction("start"));
    $("job-pause").addEventListener("click", () => jobAction("pause"));
    $("job-resume").addEventListener("click", () => jobAction("resume"));
    $("job-cancel").addEventListener("click", () => jobAction("cancel"));
    $("jobs-refresh").addEventListener("click", loadJobs);
    $("check-form").addEventListener("submit", onCheck);
    $("lists-refresh").addEventListener("click", loadLists);
    $("import-form").addEventListener("submit", onImport);
    $("erase-form").addEventListener("submit", onErase);
    $("object-form").addEventListener("submit", onObject);
    for (const select of document.querySelectorAll(".policy-select")) {
      select.addEventListener("change", () => describePolicy(select));
    }
    window.addEventListener("hashchange", () => route(true));
    showSession();
    route(false);
    loadPolicies();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
