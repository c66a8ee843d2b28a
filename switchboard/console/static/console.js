const LEVEL = {I: "特别重大", II: "重大", III: "较大", IV: "一般"};
const STATUS = {reported: "已接报", responding: "处置中", closed: "已结束"};
let token = sessionStorage.getItem("token");
let current = null;

const $ = (id) => document.getElementById(id);
const local = (iso) => iso ? new Date(iso).toLocaleString("zh-CN", {hour12: false}) : "—";
function cell(row, text, cls) { const td = row.insertCell(); td.textContent = text; if (cls) td.className = cls; return td; }
function showError(message) { $("error").textContent = message || ""; }

async function api(path, options = {}) {
  const response = await fetch(path, {...options, headers: {"Content-Type": "application/json", "Authorization": "Bearer " + token, ...(options.headers || {})}});
  if (response.status === 401) { sessionStorage.removeItem("token"); location.reload(); }
  const body = await response.json();
  if (!response.ok) throw new Error(body.message + (body.field ? "（" + body.field + "）" : ""));
  return body;
}

async function loadIncidents() {
  const page = await api("/api/v1/incidents?limit=50");
  const tbody = $("incidents"); tbody.replaceChildren();
  for (const incident of page.items) {
    const row = tbody.insertRow(); row.className = "pick"; row.dataset.id = incident.id;
    cell(row, incident.title); cell(row, LEVEL[incident.level]); cell(row, STATUS[incident.status]);
    const overdue = !incident.first_report_at && new Date(incident.first_report_due_at) < new Date();
    cell(row, incident.first_report_at ? "已初报" : local(incident.first_report_due_at), overdue ? "due" : "");
    row.onclick = () => loadTimeline(incident);
  }
}

async function loadTimeline(incident) {
  current = incident.id;
  $("timeline-title").textContent = "时间线 · " + incident.title;
  const page = await api(`/api/v1/incidents/${incident.id}/timeline?limit=500`);
  const tbody = $("timeline"); tbody.replaceChildren();
  for (const entry of page.items) { const row = tbody.insertRow(); cell(row, local(entry.at)); cell(row, entry.actor); cell(row, entry.summary); }
}

function listen() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${scheme}://${location.host}/api/v1/events?token=${encodeURIComponent(token)}`);
  ws.onmessage = (message) => {
    const event = JSON.parse(message.data);
    const item = document.createElement("li");
    item.textContent = `${local(event.at)} ${event.type} ${event.data.title || event.data.text || ""}`;
    if (event.type.startsWith("report.")) item.className = "due";
    $("events").prepend(item);
    loadIncidents().catch((e) => showError(e.message));
    if (event.incident_id === current) api(`/api/v1/incidents/${current}`).then(loadTimeline);
  };
  ws.onclose = () => setTimeout(listen, 3000);
}

async function health() {
  try {
    const body = await (await fetch("/healthz")).json();
    $("health").textContent = Object.entries(body.components).map(([name, c]) => `${name}: ${c.status === "ok" ? "正常" : "故障"}`).join(" · ");
  } catch { $("health").textContent = "服务器不可达"; }
}

$("login-form").onsubmit = async (e) => {
  e.preventDefault();
  const response = await fetch("/api/v1/auth/token", {method: "POST", headers: {"Content-Type": "application/json"},
    body: JSON.stringify({username: $("username").value, password: $("password").value})});
  const body = await response.json();
  if (!response.ok) return showError(body.message);
  token = body.access_token; sessionStorage.setItem("token", token); start();
};

$("incident-form").onsubmit = async (e) => {
  e.preventDefault();
  const data = Object.fromEntries(new FormData(e.target));
  try { const incident = await api("/api/v1/incidents", {method: "POST", body: JSON.stringify(data)}); showError(""); e.target.reset(); loadTimeline(incident); }
  catch (err) { showError(err.message); }
};

async function start() {
  $("login").classList.add("hidden"); $("desk").classList.remove("hidden");
  const me = await api("/api/v1/me"); $("who").textContent = me.username;
  await loadIncidents(); listen();
}

health(); setInterval(health, 15000);
if (token) start().catch((e) => showError(e.message));
