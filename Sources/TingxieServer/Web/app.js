// Tingxie web UI: plain JavaScript over the REST API and the /v1/stream WebSocket.
// Server text is only ever put into the page with textContent, never as HTML.
"use strict";

const TEXT = {
  zh: {
    "tab.single": "单文件识别", "tab.batch": "批量处理", "tab.live": "实时录音", "tab.system": "系统信息",
    "key.button": "API 密钥", "key.title": "需要 API 密钥", "key.text": "此服务器要求 API 密钥。密钥只保存在本浏览器中。",
    "key.cancel": "取消", "key.save": "保存",
    "single.drop": "拖入音频或视频文件，或点击选择", "single.start": "开始识别",
    "hotwords.label": "热词（逗号分隔，可带权重，如“鲲鹏处理器 2, 飞桨”）",
    "result.copy": "复制", "result.copied": "已复制", "history.title": "历史记录",
    "col.file": "文件", "col.status": "状态", "col.duration": "时长", "col.created": "提交时间", "col.progress": "进度",
    "col.error": "错误", "col.time": "时间", "col.cause": "类别", "col.subject": "对象", "col.message": "说明",
    "batch.drop": "拖入多个文件，或点击选择", "batch.start": "全部开始", "batch.download": "下载全部文字稿（ZIP）",
    "live.start": "开始录音", "live.stop": "停止", "live.save": "保存为任务",
    "system.incidents": "最近事件（24 小时）",
    "limits": "上限：{size}，{duration}", "checking": "正在检查文件…",
    "too.big": "文件 {size} 超过服务器上限 {limit}，未上传。",
    "too.long": "音频时长 {duration} 超过服务器上限 {limit}，未上传。请拆分后再试。",
    "uploading": "上传中 {percent}%", "queued": "排队中", "running": "识别中 {percent}%", "done": "完成，用时 {seconds} 秒",
    "status.queued": "排队中", "status.running": "识别中", "status.succeeded": "完成", "status.failed": "失败",
    "status.canceled": "已取消", "status.waiting": "等待上传", "status.uploading": "上传中", "status.rejected": "未上传",
    "cancel": "取消", "open": "查看", "no.sentences": "（没有识别到语音）",
    "hotword.text": "热词，原为“{original}”", "hotword.decoder": "热词（解码时加权）",
    "live.connecting": "正在连接…", "live.listening": "正在聆听，说话即可", "live.finished": "录音结束",
    "live.saved": "已保存为任务 {id}", "live.mic": "无法使用麦克风：{error}", "live.firstText": "开口后 {seconds} 秒出字",
    "card.model": "模型", "card.workers": "工作进程", "card.queue": "队列", "card.memory": "内存", "card.gpu": "GPU",
    "card.limits": "限制", "card.version": "版本",
    "k.name": "名称", "k.family": "类型", "k.language": "语言", "k.timestamps": "词级时间戳", "k.workers": "工作进程",
    "k.threads": "每进程线程", "k.throttled": "暂停领取", "k.queued": "排队任务", "k.audio": "排队音频", "k.running": "运行中",
    "k.rss": "进程内存", "k.available": "可用内存", "k.total": "总内存", "k.none": "无", "k.upload": "上传", "k.duration": "时长",
    "k.sync": "同步接口", "k.queue": "队列", "k.version": "Tingxie", "yes": "是", "no": "否",
    "error.network": "无法连接服务器", "unauthorized": "API 密钥无效或缺失",
  },
  en: {
    "tab.single": "Single file", "tab.batch": "Batch", "tab.live": "Live recording", "tab.system": "System",
    "key.button": "API key", "key.title": "API key required", "key.text": "This server requires an API key. It is kept in this browser only.",
    "key.cancel": "Cancel", "key.save": "Save",
    "single.drop": "Drop an audio or video file here, or click to choose", "single.start": "Transcribe",
    "hotwords.label": "Hotwords (comma-separated, optional weight, e.g. \"鲲鹏处理器 2, 飞桨\")",
    "result.copy": "Copy", "result.copied": "Copied", "history.title": "History",
    "col.file": "File", "col.status": "Status", "col.duration": "Duration", "col.created": "Submitted", "col.progress": "Progress",
    "col.error": "Error", "col.time": "Time", "col.cause": "Cause", "col.subject": "Subject", "col.message": "Message",
    "batch.drop": "Drop several files here, or click to choose", "batch.start": "Start all", "batch.download": "Download all transcripts (ZIP)",
    "live.start": "Start recording", "live.stop": "Stop", "live.save": "Save as a job",
    "system.incidents": "Recent incidents (24 h)",
    "limits": "Limits: {size}, {duration}", "checking": "Checking the file…",
    "too.big": "The file is {size}, over the server's limit of {limit}; not uploaded.",
    "too.long": "The audio is {duration} long, over the server's limit of {limit}; not uploaded. Split it and try again.",
    "uploading": "Uploading {percent}%", "queued": "Queued", "running": "Transcribing {percent}%", "done": "Done in {seconds} s",
    "status.queued": "queued", "status.running": "running", "status.succeeded": "done", "status.failed": "failed",
    "status.canceled": "canceled", "status.waiting": "waiting", "status.uploading": "uploading", "status.rejected": "not uploaded",
    "cancel": "Cancel", "open": "Open", "no.sentences": "(no speech found)",
    "hotword.text": "Hotword, heard as “{original}”", "hotword.decoder": "Hotword (biased in decoding)",
    "live.connecting": "Connecting…", "live.listening": "Listening — just speak", "live.finished": "Recording finished",
    "live.saved": "Saved as job {id}", "live.mic": "Cannot use the microphone: {error}", "live.firstText": "first words {seconds} s after speech began",
    "card.model": "Model", "card.workers": "Workers", "card.queue": "Queue", "card.memory": "Memory", "card.gpu": "GPU",
    "card.limits": "Limits", "card.version": "Version",
    "k.name": "Name", "k.family": "Family", "k.language": "Language", "k.timestamps": "Token times", "k.workers": "Workers",
    "k.threads": "Threads each", "k.throttled": "Throttled", "k.queued": "Queued jobs", "k.audio": "Queued audio", "k.running": "Running",
    "k.rss": "Process", "k.available": "Available", "k.total": "Total", "k.none": "none", "k.upload": "Upload", "k.duration": "Duration",
    "k.sync": "Sync API", "k.queue": "Queue", "k.version": "Tingxie", "yes": "yes", "no": "no",
    "error.network": "Cannot reach the server", "unauthorized": "The API key is missing or wrong",
  },
};

const state = {
  lang: localStorage.getItem("tingxie.lang") || "zh",
  key: localStorage.getItem("tingxie.key") || "",
  system: null,
};

const $ = (id) => document.getElementById(id);

function t(name, values = {}) {
  const template = (TEXT[state.lang] || TEXT.zh)[name] || name;
  return template.replace(/\{(\w+)\}/g, (_, key) => String(values[key] ?? ""));
}

function applyLanguage() {
  document.documentElement.lang = state.lang === "zh" ? "zh-CN" : "en";
  document.querySelectorAll("[data-i18n]").forEach((node) => { node.textContent = t(node.dataset.i18n); });
  if (single.file) $("single-drop").querySelector("span").textContent = single.file.name;
  $("lang-button").textContent = state.lang === "zh" ? "English" : "中文";
  showLimits();
  renderHistory();
}

// Small DOM builder: element(tag, {class, text, ...attributes}, children). Text goes through textContent.
function element(tag, options = {}, children = []) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(options)) {
    if (name === "text") node.textContent = value;
    else if (name === "class") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value);
  }
  for (const child of children) node.append(child);
  return node;
}

function formatBytes(bytes) {
  if (bytes == null) return "—";
  if (bytes >= 1 << 30) return (bytes / (1 << 30)).toFixed(1) + " GB";
  if (bytes >= 1 << 20) return (bytes / (1 << 20)).toFixed(1) + " MB";
  return Math.max(1, Math.round(bytes / 1024)) + " KB";
}

function formatDuration(seconds) {
  if (seconds == null || !isFinite(seconds)) return "—";
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${String(r).padStart(2, "0")}` : `${m}:${String(r).padStart(2, "0")}`;
}

function clock(seconds) {
  const ms = Math.round(seconds * 1000);
  const m = Math.floor(ms / 60000), s = Math.floor((ms % 60000) / 1000), rest = ms % 1000;
  return `${String(m).padStart(2, "0")}:${String(s).padStart(2, "0")}.${String(Math.floor(rest / 100))}`;
}

// ---- API ----

function authHeaders() {
  return state.key ? { Authorization: "Bearer " + state.key } : {};
}

async function api(path, options = {}) {
  let response;
  try {
    response = await fetch(path, { ...options, headers: { ...authHeaders(), ...(options.headers || {}) } });
  } catch (error) {
    throw new Error(t("error.network"));
  }
  if (response.status === 401) {
    if (await askForKey()) return api(path, options);
    throw new Error(t("unauthorized"));
  }
  if (!response.ok) {
    let message = response.statusText;
    try { message = (await response.json()).error.message; } catch (_) { /* not JSON */ }
    throw new Error(message);
  }
  return response;
}

async function apiJSON(path, options) {
  return (await api(path, options)).json();
}

function askForKey() {
  return new Promise((resolve) => {
    const dialog = $("key-dialog");
    $("key-input").value = state.key;
    dialog.addEventListener("close", () => {
      if (dialog.returnValue === "save") {
        state.key = $("key-input").value.trim();
        localStorage.setItem("tingxie.key", state.key);
        resolve(true);
      } else {
        resolve(false);
      }
    }, { once: true });
    dialog.showModal();
  });
}

// Uploads one file as a job with upload progress; resolves with the job.
function uploadJob(file, hotwords, onProgress) {
  return new Promise((resolve, reject) => {
    const form = new FormData();
    form.append("file", file, file.name);
    if (hotwords) form.append("hotwords", hotwords);
    const request = new XMLHttpRequest();
    request.open("POST", "/v1/jobs");
    for (const [name, value] of Object.entries(authHeaders())) request.setRequestHeader(name, value);
    request.upload.onprogress = (event) => { if (event.lengthComputable) onProgress(event.loaded / event.total); };
    request.onerror = () => reject(new Error(t("error.network")));
    request.onload = async () => {
      let body = {};
      try { body = JSON.parse(request.responseText); } catch (_) { /* not JSON */ }
      if (request.status === 401 && await askForKey()) return uploadJob(file, hotwords, onProgress).then(resolve, reject);
      if (request.status !== 202) return reject(new Error((body.error && body.error.message) || request.statusText));
      resolve(body);
    };
    request.send(form);
  });
}

// Polls a job until it ends, reporting each state.
async function followJob(id, onUpdate) {
  for (;;) {
    const job = await apiJSON(`/v1/jobs/${encodeURIComponent(id)}`);
    onUpdate(job);
    if (["succeeded", "failed", "canceled"].includes(job.status)) return job;
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

// ---- Limits, checked in the browser before uploading ----

async function loadSystem() {
  try { state.system = await apiJSON("/v1/system"); } catch (_) { state.system = null; }
  showLimits();
}

function showLimits() {
  const limits = state.system && state.system.limits;
  $("single-limits").textContent = limits
    ? t("limits", { size: formatBytes(limits.max_upload_bytes), duration: formatDuration(limits.max_duration_s) }) : "";
}

function mediaDuration(file) {
  return new Promise((resolve) => {
    const media = document.createElement("audio");
    const url = URL.createObjectURL(file);
    const done = (value) => { URL.revokeObjectURL(url); resolve(value); };
    media.preload = "metadata";
    media.onloadedmetadata = () => done(isFinite(media.duration) ? media.duration : null);
    media.onerror = () => done(null);
    setTimeout(() => done(null), 10000);
    media.src = url;
  });
}

// Returns an error message when the file is over a limit, else null. Files the browser
// cannot read are left to the server's probe.
async function checkLimits(file) {
  const limits = state.system && state.system.limits;
  if (!limits) return null;
  if (file.size > limits.max_upload_bytes) {
    return t("too.big", { size: formatBytes(file.size), limit: formatBytes(limits.max_upload_bytes) });
  }
  const duration = await mediaDuration(file);
  if (duration != null && duration > limits.max_duration_s) {
    return t("too.long", { duration: formatDuration(duration), limit: formatDuration(limits.max_duration_s) });
  }
  return null;
}

function setupDrop(zone, input, onFiles) {
  zone.addEventListener("dragover", (event) => { event.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    onFiles([...event.dataTransfer.files]);
  });
  input.addEventListener("change", () => onFiles([...input.files]));
}

function downloadBlob(blob, name) {
  const link = element("a", { href: URL.createObjectURL(blob), download: name });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10000);
}

function baseName(name) {
  return (name || "transcript").replace(/\.[^.]*$/, "");
}

// ---- History (kept in this browser) ----

function history() {
  try { return JSON.parse(localStorage.getItem("tingxie.history") || "[]"); } catch (_) { return []; }
}

function remember(entry) {
  const entries = history().filter((item) => item.id !== entry.id);
  entries.unshift(entry);
  localStorage.setItem("tingxie.history", JSON.stringify(entries.slice(0, 100)));
  renderHistory();
}

function renderHistory() {
  const body = $("history");
  body.replaceChildren(...history().map((item) => element("tr", {}, [
    element("td", { text: item.filename || item.id }),
    element("td", { class: "status-" + item.status, text: t("status." + item.status) }),
    element("td", { text: formatDuration(item.duration_s) }),
    element("td", { text: new Date(item.created_at).toLocaleString() }),
    element("td", {}, item.status === "succeeded"
      ? [element("button", { text: t("open"), onclick: () => showTranscript(item.id, item.filename, null) })] : []),
  ])));
}

async function refreshHistory() {
  for (const item of history().filter((entry) => !["succeeded", "failed", "canceled"].includes(entry.status))) {
    try {
      const job = await apiJSON(`/v1/jobs/${encodeURIComponent(item.id)}`);
      remember({ ...item, status: job.status });
    } catch (_) { /* the job may be gone */ }
  }
}

// ---- Single file ----

const single = { file: null, jobID: null, transcript: null };

function chooseSingle(files) {
  single.file = files[0] || null;
  const label = $("single-drop").querySelector("span");
  label.textContent = single.file ? single.file.name : t("single.drop");
  label.classList.toggle("chosen", !!single.file);
  $("single-start").disabled = !single.file;
  setMessage("single-message", "");
}

function setMessage(id, text, isError = false) {
  const node = $(id);
  node.textContent = text;
  node.classList.toggle("error", isError);
}

function setProgress(fraction, label) {
  const box = $("single-progress");
  box.classList.remove("hidden");
  box.querySelector(".bar div").style.width = Math.round(fraction * 100) + "%";
  box.querySelector(".label").textContent = label;
}

async function startSingle() {
  const file = single.file;
  if (!file) return;
  $("single-start").disabled = true;
  setMessage("single-message", t("checking"));
  const problem = await checkLimits(file);
  if (problem) {
    setMessage("single-message", problem, true);
    $("single-start").disabled = false;
    return;
  }
  setMessage("single-message", "");
  try {
    const job = await uploadJob(file, $("single-hotwords").value.trim(), (fraction) => setProgress(fraction, t("uploading", { percent: Math.round(fraction * 100) })));
    single.jobID = job.id;
    remember({ id: job.id, filename: file.name, status: job.status, duration_s: job.duration_s, created_at: job.created_at });
    const finished = await followJob(job.id, (current) => {
      if (current.status === "queued") setProgress(0, t("queued"));
      if (current.status === "running") setProgress(current.progress, t("running", { percent: Math.round(current.progress * 100) }));
    });
    remember({ id: job.id, filename: file.name, status: finished.status, duration_s: finished.duration_s, created_at: finished.created_at });
    if (finished.status !== "succeeded") throw new Error((finished.error && finished.error.message) || t("status." + finished.status));
    await showTranscript(job.id, file.name, file);
  } catch (error) {
    setMessage("single-message", error.message, true);
    $("single-progress").classList.add("hidden");
  } finally {
    $("single-start").disabled = !single.file;
  }
}

async function showTranscript(id, filename, file) {
  const transcript = await apiJSON(`/v1/jobs/${encodeURIComponent(id)}/transcript?format=json`);
  single.jobID = id;
  single.transcript = transcript;
  $("single-result").classList.remove("hidden");
  $("single-title").textContent = filename || id;
  const audio = $("single-audio");
  audio.classList.toggle("hidden", !file);
  if (file) audio.src = URL.createObjectURL(file);
  const list = $("single-segments");
  list.replaceChildren(...(transcript.segments.length ? transcript.segments : [null]).map((segment) => segment
    ? element("li", { onclick: () => { if (file) { audio.currentTime = segment.start; audio.play(); } } }, [
        element("time", { text: `${clock(segment.start)} – ${clock(segment.end)}` }),
        segmentText(segment),
      ])
    : element("li", { text: t("no.sentences") })));
  setProgress(1, t("done", { seconds: transcript.processing_s.toFixed(1) }));
}

/** A segment's text with the hotwords in it marked; offsets count characters. */
function segmentText(segment) {
  const characters = Array.from(segment.text);
  const parts = [];
  let position = 0;
  for (const applied of [...(segment.hotwords || [])].sort((a, b) => a.offset - b.offset)) {
    if (applied.offset < position) continue;
    const length = Array.from(applied.hotword).length;
    parts.push(characters.slice(position, applied.offset).join(""));
    const title = applied.stage === "decoder" ? t("hotword.decoder") : t("hotword.text", { original: applied.original });
    parts.push(element("mark", { text: characters.slice(applied.offset, applied.offset + length).join(""), title }));
    position = applied.offset + length;
  }
  parts.push(characters.slice(position).join(""));
  return element("span", {}, parts);
}

async function copyTranscript() {
  if (!single.transcript) return;
  const text = single.transcript.segments.map((segment) => segment.text).join("\n");
  try {
    await navigator.clipboard.writeText(text);
  } catch (_) {
    const area = element("textarea", {}, []);
    area.value = text;
    document.body.append(area);
    area.select();
    document.execCommand("copy");
    area.remove();
  }
  setMessage("single-message", t("result.copied"));
}

async function downloadTranscript(format) {
  if (!single.jobID) return;
  const response = await api(`/v1/jobs/${encodeURIComponent(single.jobID)}/transcript?format=${format}`);
  downloadBlob(await response.blob(), `${baseName($("single-title").textContent)}.${format}`);
}

// ---- Batch ----

const batch = { rows: [] };

function chooseBatch(files) {
  for (const file of files) {
    const row = { file, status: "waiting", progress: 0, job: null, error: "" };
    batch.rows.push(row);
  }
  $("batch-start").disabled = !batch.rows.some((row) => row.status === "waiting");
  renderBatch();
}

function renderBatch() {
  $("batch-rows").replaceChildren(...batch.rows.map((row) => element("tr", {}, [
    element("td", { text: row.file.name }),
    element("td", { class: "status-" + row.status, text: t("status." + row.status) }),
    element("td", { text: Math.round(row.progress * 100) + "%" }),
    element("td", { text: formatDuration(row.job && row.job.duration_s) }),
    element("td", { text: row.error }),
    element("td", {}, row.job && ["queued", "running"].includes(row.status)
      ? [element("button", { text: t("cancel"), onclick: () => cancelJob(row) })] : []),
  ])));
  $("batch-download").disabled = !batch.rows.some((row) => row.status === "succeeded");
}

async function cancelJob(row) {
  try {
    await api(`/v1/jobs/${encodeURIComponent(row.job.id)}`, { method: "DELETE" });
  } catch (error) {
    row.error = error.message;
    renderBatch();
  }
}

async function runBatchRow(row, hotwords) {
  const problem = await checkLimits(row.file);
  if (problem) {
    Object.assign(row, { status: "rejected", error: problem });
    renderBatch();
    return;
  }
  try {
    row.status = "uploading";
    renderBatch();
    row.job = await uploadJob(row.file, hotwords, (fraction) => { row.progress = fraction * 0.2; renderBatch(); });
    remember({ id: row.job.id, filename: row.file.name, status: "queued", duration_s: row.job.duration_s, created_at: row.job.created_at });
    const finished = await followJob(row.job.id, (job) => {
      Object.assign(row, { status: job.status, progress: 0.2 + 0.8 * job.progress, job });
      renderBatch();
    });
    row.progress = finished.status === "succeeded" ? 1 : row.progress;
    row.error = finished.error ? finished.error.message : "";
    remember({ id: finished.id, filename: row.file.name, status: finished.status, duration_s: finished.duration_s, created_at: finished.created_at });
  } catch (error) {
    Object.assign(row, { status: "failed", error: error.message });
  }
  renderBatch();
}

async function startBatch() {
  $("batch-start").disabled = true;
  const hotwords = $("batch-hotwords").value.trim();
  const waiting = batch.rows.filter((row) => row.status === "waiting");
  // Two uploads at a time; the server's queue takes care of the rest.
  const lanes = [0, 1].map(async (lane) => {
    for (let index = lane; index < waiting.length; index += 2) await runBatchRow(waiting[index], hotwords);
  });
  await Promise.all(lanes);
}

async function downloadBatch() {
  const files = [];
  for (const row of batch.rows.filter((item) => item.status === "succeeded")) {
    const response = await api(`/v1/jobs/${encodeURIComponent(row.job.id)}/transcript?format=txt`);
    files.push({ name: `${baseName(row.file.name)}.txt`, data: new Uint8Array(await response.arrayBuffer()) });
  }
  downloadBlob(zip(files), "transcripts.zip");
}

// A ZIP archive of stored (uncompressed) files.
function zip(files) {
  const table = new Uint32Array(256).map((_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc32 = (data) => {
    let c = 0xffffffff;
    for (const byte of data) c = table[(c ^ byte) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const parts = [], central = [];
  let offset = 0;
  for (const file of files) {
    const name = new TextEncoder().encode(file.name);
    const crc = crc32(file.data);
    const header = new DataView(new ArrayBuffer(30));
    [[0, 0x04034b50, 4], [4, 20, 2], [6, 0x0800, 2], [14, crc, 4], [18, file.data.length, 4], [22, file.data.length, 4], [26, name.length, 2]]
      .forEach(([at, value, size]) => size === 4 ? header.setUint32(at, value, true) : header.setUint16(at, value, true));
    const entry = new DataView(new ArrayBuffer(46));
    [[0, 0x02014b50, 4], [4, 20, 2], [6, 20, 2], [8, 0x0800, 2], [16, crc, 4], [20, file.data.length, 4], [24, file.data.length, 4], [28, name.length, 2], [42, offset, 4]]
      .forEach(([at, value, size]) => size === 4 ? entry.setUint32(at, value, true) : entry.setUint16(at, value, true));
    parts.push(header, name, file.data);
    central.push(entry, name);
    offset += 30 + name.length + file.data.length;
  }
  const size = central.reduce((sum, part) => sum + part.byteLength, 0);
  const end = new DataView(new ArrayBuffer(22));
  [[0, 0x06054b50, 4], [8, files.length, 2], [10, files.length, 2], [12, size, 4], [16, offset, 4]]
    .forEach(([at, value, bytes]) => bytes === 4 ? end.setUint32(at, value, true) : end.setUint16(at, value, true));
  return new Blob([...parts, ...central, end], { type: "application/zip" });
}

// ---- Live recording over /v1/stream (FunASR protocol) ----

// sent: samples sent so far (the stream's clock); firstText: when the open sentence's first words came.
const live = { socket: null, context: null, stream: null, pcm: [], rate: 16000, sent: 0, firstText: null };

async function startLive() {
  $("live-start").disabled = true;
  $("live-save").disabled = true;
  $("live-sentences").replaceChildren();
  setMessage("live-message", t("live.connecting"));
  live.pcm = [];
  live.sent = 0;
  live.firstText = null;
  try {
    live.stream = await navigator.mediaDevices.getUserMedia({ audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true } });
  } catch (error) {
    setMessage("live-message", t("live.mic", { error: error.message }), true);
    $("live-start").disabled = false;
    return;
  }
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  // Browsers cannot set headers on a WebSocket: the key travels as a subprotocol, never in the URL.
  const protocols = state.key ? ["tingxie", "tingxie-key." + state.key] : [];
  const socket = new WebSocket(`${scheme}//${location.host}/v1/stream`, protocols);
  live.socket = socket;
  socket.binaryType = "arraybuffer";
  socket.onopen = async () => {
    socket.send(JSON.stringify({ mode: "2pass", wav_name: "microphone", wav_format: "pcm", audio_fs: live.rate, is_speaking: true, chunk_size: [5, 10, 5] }));
    live.context = new AudioContext();
    await live.context.audioWorklet.addModule("capture-worklet.js");
    const source = live.context.createMediaStreamSource(live.stream);
    const node = new AudioWorkletNode(live.context, "pcm-capture", { processorOptions: { targetRate: live.rate } });
    node.port.onmessage = (event) => {
      const { pcm, level } = event.data;
      $("live-level").style.width = Math.min(100, Math.round(level * 300)) + "%";
      live.pcm.push(pcm);
      if (socket.readyState === WebSocket.OPEN) {
        socket.send(pcm.buffer);
        live.sent += pcm.length;
      }
    };
    source.connect(node);
    setMessage("live-message", t("live.listening"));
    $("live-stop").disabled = false;
  };
  socket.onmessage = (event) => {
    const message = JSON.parse(event.data);
    if (message.error) {
      setMessage("live-message", message.error.message, true);
      return;
    }
    if (message.is_final) {
      setMessage("live-message", t("live.finished"));
      socket.close();
      return;
    }
    // Partials (2pass-online) carry only new words: they grow a grey line that the sentence replaces.
    let partial = $("live-sentences").querySelector("li.partial");
    if (message.mode === "2pass-online") {
      if (!partial) {
        partial = element("li", { class: "partial" }, [element("time", { text: "…" }), element("span")]);
        $("live-sentences").append(partial);
        live.firstText = live.sent / live.rate;
      }
      partial.querySelector("span").textContent += message.text;
      return;
    }
    const start = message.start_time / 1000;
    const spoken = live.firstText == null ? [] : [element("small", { text: t("live.firstText", { seconds: Math.max(0, live.firstText - start).toFixed(1) }) })];
    if (partial) partial.remove();
    live.firstText = null;
    $("live-sentences").append(element("li", {}, [
      element("time", { text: `${clock(start)} – ${clock(message.end_time / 1000)}` }),
      element("span", { text: message.text }),
      ...spoken,
    ]));
  };
  socket.onerror = () => setMessage("live-message", t("error.network"), true);
  socket.onclose = () => stopCapture();
}

function stopCapture() {
  if (live.stream) live.stream.getTracks().forEach((track) => track.stop());
  if (live.context) live.context.close();
  live.stream = null;
  live.context = null;
  $("live-stop").disabled = true;
  $("live-start").disabled = false;
  $("live-level").style.width = "0";
  $("live-save").disabled = live.pcm.length === 0;
}

function stopLive() {
  if (live.socket && live.socket.readyState === WebSocket.OPEN) live.socket.send(JSON.stringify({ is_speaking: false }));
  if (live.stream) live.stream.getTracks().forEach((track) => track.stop());
  $("live-stop").disabled = true;
}

// The recording as a 16-bit mono WAV file.
function recordingWAV() {
  const samples = live.pcm.reduce((sum, chunk) => sum + chunk.length, 0);
  const view = new DataView(new ArrayBuffer(44 + samples * 2));
  const text = (at, value) => [...value].forEach((char, index) => view.setUint8(at + index, char.charCodeAt(0)));
  text(0, "RIFF"); view.setUint32(4, 36 + samples * 2, true); text(8, "WAVE"); text(12, "fmt ");
  view.setUint32(16, 16, true); view.setUint16(20, 1, true); view.setUint16(22, 1, true);
  view.setUint32(24, live.rate, true); view.setUint32(28, live.rate * 2, true); view.setUint16(32, 2, true); view.setUint16(34, 16, true);
  text(36, "data"); view.setUint32(40, samples * 2, true);
  let at = 44;
  for (const chunk of live.pcm) for (const value of chunk) { view.setInt16(at, value, true); at += 2; }
  return new File([view], `recording-${new Date().toISOString().replace(/[:.]/g, "-")}.wav`, { type: "audio/wav" });
}

async function saveLive() {
  $("live-save").disabled = true;
  try {
    const file = recordingWAV();
    const job = await uploadJob(file, "", () => {});
    remember({ id: job.id, filename: file.name, status: job.status, duration_s: job.duration_s, created_at: job.created_at });
    setMessage("live-message", t("live.saved", { id: job.id }));
  } catch (error) {
    setMessage("live-message", error.message, true);
    $("live-save").disabled = false;
  }
}

// ---- System ----

function card(title, entries) {
  return element("div", { class: "card" }, [
    element("h2", { text: title }),
    element("dl", {}, entries.flatMap(([name, value]) => [element("dt", { text: name }), element("dd", { text: String(value) })])),
  ]);
}

async function refreshSystem() {
  if (!$("tab-system").classList.contains("active")) return;
  try {
    const [system, incidents] = await Promise.all([apiJSON("/v1/system"), apiJSON("/v1/incidents?since=24h&limit=20")]);
    state.system = system;
    const yes = (value) => value ? t("yes") : t("no");
    const gpus = system.gpu || [];
    $("system-cards").replaceChildren(
      card(t("card.model"), [[t("k.name"), system.model.name], [t("k.family"), system.model.family], [t("k.language"), system.language],
        [t("k.timestamps"), yes(system.model.token_timestamps)]]),
      card(t("card.workers"), [[t("k.workers"), system.workers], [t("k.threads"), system.threads_per_worker], [t("k.throttled"), yes(system.throttled)]]),
      card(t("card.queue"), [[t("k.queued"), system.queue.queued], [t("k.audio"), formatDuration(system.queue.queued_audio_s)], [t("k.running"), system.queue.running]]),
      card(t("card.memory"), [[t("k.rss"), formatBytes(system.memory.rss_bytes)], [t("k.available"), formatBytes(system.memory.available_bytes)],
        [t("k.total"), formatBytes(system.memory.total_bytes)]]),
      card(t("card.gpu"), gpus.length ? gpus.map((gpu) => [`GPU ${gpu.index}`, `${formatBytes(gpu.used_bytes)} / ${formatBytes(gpu.total_bytes)}`]) : [[t("card.gpu"), t("k.none")]]),
      card(t("card.limits"), [[t("k.upload"), formatBytes(system.limits.max_upload_bytes)], [t("k.duration"), formatDuration(system.limits.max_duration_s)],
        [t("k.sync"), formatDuration(system.limits.max_sync_duration_s)], [t("k.queue"), system.limits.max_queued_jobs]]),
      card(t("card.version"), [[t("k.version"), system.version]]),
    );
    $("incidents").replaceChildren(...incidents.incidents.map((incident) => element("tr", {}, [
      element("td", { text: new Date(incident.opened_at).toLocaleString() }),
      element("td", { text: incident.cause }),
      element("td", { text: incident.filename || incident.job_id || (incident.kind === "alert" ? "alert" : "—") }),
      element("td", { text: incident.message }),
    ])));
  } catch (error) {
    $("system-cards").replaceChildren(element("div", { class: "card message error", text: error.message }));
  }
}

// ---- Wiring ----

function selectTab(name) {
  document.querySelectorAll("nav button").forEach((button) => button.setAttribute("aria-selected", String(button.dataset.tab === name)));
  document.querySelectorAll(".tab").forEach((tab) => tab.classList.toggle("active", tab.id === "tab-" + name));
  location.hash = name;
  if (name === "system") refreshSystem();
}

document.querySelectorAll("nav button").forEach((button) => button.addEventListener("click", () => selectTab(button.dataset.tab)));
$("lang-button").addEventListener("click", () => {
  state.lang = state.lang === "zh" ? "en" : "zh";
  localStorage.setItem("tingxie.lang", state.lang);
  applyLanguage();
  refreshSystem();
});
$("key-button").addEventListener("click", async () => { if (await askForKey()) loadSystem(); });
setupDrop($("single-drop"), $("single-file"), chooseSingle);
setupDrop($("batch-drop"), $("batch-files"), chooseBatch);
$("single-start").addEventListener("click", startSingle);
$("single-copy").addEventListener("click", copyTranscript);
document.querySelectorAll("[data-download]").forEach((button) => button.addEventListener("click", () => downloadTranscript(button.dataset.download)));
$("batch-start").addEventListener("click", startBatch);
$("batch-download").addEventListener("click", downloadBatch);
$("live-start").addEventListener("click", startLive);
$("live-stop").addEventListener("click", stopLive);
$("live-save").addEventListener("click", saveLive);
setInterval(refreshSystem, 5000);

applyLanguage();
selectTab(["single", "batch", "live", "system"].includes(location.hash.slice(1)) ? location.hash.slice(1) : "single");
loadSystem();
refreshHistory();
