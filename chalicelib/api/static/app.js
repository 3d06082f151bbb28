// Shipyard's dashboard: plain DOM, no framework, no build step. Every value from the API is
// put on the page with textContent, never as HTML. The API key lives in sessionStorage.
"use strict";

const KEY = "shipyard.apiKey";
const $ = (id) => document.getElementById(id);
// `log` is the stream being followed: "logs" (the build log), then "runtime-logs".
const state = { project: null, following: null, log: "logs", source: null, lastSeq: 0, lastStatus: null, pendingStatus: null, poll: null };
// A build log that ends in one of these is followed by the deployment's runtime log.
const RAN = ["running", "stopped"];

function apiKey() { return sessionStorage.getItem(KEY); }

async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${apiKey()}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const payload = response.status === 204 ? null : await response.json();
  if (response.status === 401) { signOut(); throw new Error(payload.error.message); }
  if (!response.ok) throw new Error(payload.error.message);
  return payload;
}

function cell(row, text, className) {
  const td = document.createElement("td");
  td.textContent = text == null ? "" : String(text);
  if (className) td.className = className;
  row.appendChild(td);
  return td;
}

function link(href, text) {
  const a = document.createElement("a");
  a.href = href;
  a.textContent = text;
  return a;
}

function show(view) {
  for (const id of ["signin-view", "projects-view", "project-view"]) $(id).hidden = id !== view;
  $("signout").hidden = view === "signin-view";
}

function signOut() {
  sessionStorage.removeItem(KEY);
  stopFollowing();
  location.hash = "#/";
  route();
}

async function signIn(event) {
  event.preventDefault();
  const key = $("api-key").value.trim();
  sessionStorage.setItem(KEY, key);
  try {
    await api("GET", "/v1/auth/me");
    $("api-key").value = "";
    $("signin-error").textContent = "";
    location.hash = "#/";
    route();
  } catch (error) {
    sessionStorage.removeItem(KEY);
    show("signin-view");
    $("signin-error").textContent = `Sign in failed: ${error.message}`;
  }
}

async function showProjects() {
  show("projects-view");
  const rows = $("project-rows");
  const { data } = await api("GET", "/v1/projects?limit=100");
  rows.replaceChildren();
  for (const project of data) {
    const row = document.createElement("tr");
    cell(row, "").appendChild(link(`#/projects/${encodeURIComponent(project.id)}`, project.name));
    const url = cell(row, "");
    if (project.url) url.appendChild(link(project.url, project.url));
    cell(row, project.status, `status-${project.status}`);
    rows.appendChild(row);
  }
  $("projects-empty").hidden = data.length > 0;
  document.title = "Projects · Shipyard";
}

async function showProject(projectId) {
  show("project-view");
  await refreshProject(projectId);
  clearInterval(state.poll);
  state.poll = setInterval(() => refreshProject(projectId).catch(() => {}), 3000);
}

async function refreshProject(projectId) {
  const [{ data: project }, { data: deployments }, { data: env }] = await Promise.all([
    api("GET", `/v1/projects/${projectId}`),
    api("GET", `/v1/projects/${projectId}/deployments?limit=20`),
    api("GET", `/v1/projects/${projectId}/env`),
  ]);
  state.project = project;
  $("project-name").textContent = project.name;
  document.title = `${project.name} · Shipyard`;
  const url = $("project-url");
  url.replaceChildren(project.url ? link(project.url, project.url) : document.createTextNode("none yet"));
  $("project-status").textContent = project.status;
  $("project-status").className = `status-${project.status}`;
  renderDeployments(deployments);
  renderEnv(env.vars);
  if (deployments.length && deployments[0].id !== state.following) follow(project.id, deployments[0]);
}

function renderDeployments(deployments) {
  const rows = $("deployment-rows");
  rows.replaceChildren();
  const select = $("rollback-target");
  const chosen = select.value;
  select.replaceChildren();
  for (const d of deployments) {
    const row = document.createElement("tr");
    cell(row, d.number);
    cell(row, d.status, `status-${d.status}`);
    cell(row, d.environment);
    cell(row, d.source.type);
    cell(row, d.created_at);
    cell(row, d.finished_at || "");
    rows.appendChild(row);
    if (d.status === "stopped" && d.environment !== "preview") {  // a preview is no rollback target
      const option = document.createElement("option");
      option.value = d.id;
      option.textContent = `#${d.number} (${d.status})`;
      select.appendChild(option);
    }
  }
  if ([...select.options].some((o) => o.value === chosen)) select.value = chosen;
  $("rollback").disabled = select.options.length === 0;
  $("redeploy").disabled = deployments.length === 0;
}

function renderEnv(vars) {
  const rows = $("env-rows");
  rows.replaceChildren();
  for (const [key, variable] of Object.entries(vars)) {
    const row = document.createElement("tr");
    cell(row, key);
    cell(row, variable.secret ? "•••••• (secret)" : variable.value);
    rows.appendChild(row);
  }
}

function stopFollowing() {
  if (state.source) state.source.close();
  state.source = null;
  state.following = null;
  clearInterval(state.poll);
}

function follow(projectId, deployment) {
  if (state.source) state.source.close();
  state.following = deployment.id;
  state.log = "logs";
  state.lastSeq = 0;
  state.lastStatus = deployment.status;
  state.pendingStatus = null;
  $("log").replaceChildren();
  $("log-title").textContent = `Deployment #${deployment.number}`;
  openStream(projectId, deployment.id);
}

// The runtime log's seqs start again at 1: it is another log of the same deployment.
function followRuntime(projectId, deploymentId) {
  state.source.close();
  state.log = "runtime-logs";
  state.lastSeq = 0;
  appendLine("-- runtime log");
  openStream(projectId, deploymentId);
}

// EventSource cannot send the key, so each stream opens with a 60 s ticket (one ticket
// opens both of a deployment's streams). EventSource's own reconnects (Last-Event-ID) reuse
// it; once it expired, a new ticket and ?after= resume.
async function openStream(projectId, deploymentId) {
  const base = `/v1/projects/${projectId}/deployments/${deploymentId}`;
  const log = state.log;
  const { data } = await api("POST", `${base}/logs/stream-ticket`);
  if (state.following !== deploymentId || state.log !== log) return;
  const ticket = encodeURIComponent(data.ticket);
  const source = new EventSource(`${base}/${log}/stream?ticket=${ticket}&after=${state.lastSeq}`);
  state.source = source;
  source.onmessage = (event) => {
    if (state.source !== source) return;
    const frame = JSON.parse(event.data);
    if (frame.type === "log" && frame.seq > state.lastSeq) {
      state.lastSeq = frame.seq;
      appendLine(`[${frame.phase}] ${frame.message}`);
    } else if (frame.type === "status") {
      // Each response opens with the status as it is then, which may be ahead of the lines
      // that follow it: a status is shown once the lines before it are (at the next status
      // frame or the end of the response), as the CLI does.
      showStatus(projectId);
      state.pendingStatus = frame.status;
    } else if (frame.type === "done") {
      showStatus(projectId);
      state.pendingStatus = frame.status;
      showStatus(projectId);
      source.close();
      if (log === "logs" && RAN.includes(frame.status)) followRuntime(projectId, deploymentId);
    }
  };
  source.onerror = () => {
    // A response ended (EventSource reconnects) or the stream did: its status is due.
    if (state.source === source) showStatus(projectId);
    if (source.readyState === EventSource.CLOSED && state.source === source && state.following === deploymentId) {
      setTimeout(() => { if (state.following === deploymentId) openStream(projectId, deploymentId); }, 1000);
    }
  };
}

// A status change, once: "-- running".
function showStatus(projectId) {
  const status = state.pendingStatus;
  state.pendingStatus = null;
  if (status == null || status === state.lastStatus) return;
  state.lastStatus = status;
  appendLine(`-- ${status}`);
  refreshProject(projectId).catch(() => {});
}

function appendLine(text) {
  const log = $("log");
  const atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
  log.appendChild(document.createTextNode(`${text}\n`));
  if (atBottom) log.scrollTop = log.scrollHeight;
}

async function act(button, method, path, body, done) {
  button.disabled = true;
  $("action-message").textContent = "Working…";
  try {
    const { data } = await api(method, path, body);
    $("action-message").textContent = `${done}: deployment #${data.number} is ${data.status}`;
    await refreshProject(state.project.id);
  } catch (error) {
    $("action-message").textContent = `Failed: ${error.message}`;
  } finally {
    button.disabled = false;
  }
}

async function route() {
  if (!apiKey()) { stopFollowing(); show("signin-view"); $("api-key").focus(); return; }
  const match = location.hash.match(/^#\/projects\/([^/]+)$/);
  try {
    if (match) {
      await showProject(decodeURIComponent(match[1]));
    } else {
      stopFollowing();
      await showProjects();
    }
    $("main").focus();
  } catch (error) {
    $("action-message").textContent = error.message;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("signin").addEventListener("submit", signIn);
  $("signout").addEventListener("click", signOut);
  $("redeploy").addEventListener("click", (event) =>
    act(event.target, "POST", `/v1/projects/${state.project.id}/redeploy`, {}, "Redeployed"));
  $("rollback").addEventListener("click", (event) =>
    act(event.target, "POST", `/v1/projects/${state.project.id}/rollback`,
      { deployment_id: $("rollback-target").value }, "Rolled back"));
  window.addEventListener("hashchange", route);
  route();
});
