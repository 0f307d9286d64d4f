// p_ws.js - an MQTT client in the browser (MQTT.js over the node's WebSocket
// listener, ws 8083 / wss 8084): connect, subscribe, publish, see messages.
// The library (~100 KB gzip'd) loads only when this page opens.
import { h, field, toast } from "./dom.js";

let loading = null;
function loadMqtt() {
  if (window.mqtt) return Promise.resolve(window.mqtt);
  loading ||= new Promise((ok, fail) => {
    const s = document.createElement("script");
    s.src = "/vendor/mqtt/mqtt.min.js";
    s.onload = () => ok(window.mqtt);
    s.onerror = () => { loading = null; fail(new Error("cannot load the MQTT library")); };
    document.head.append(s);
  });
  return loading;
}

let client = null; // this page's connection, ended when the page is left

export default {
  title: "WebSocket client",
  async render(main) {
    const secure = location.protocol === "https:";
    const url = field("URL", { name: "url", value: `${secure ? "wss" : "ws"}://${location.hostname}:${secure ? 8084 : 8083}/mqtt` });
    const cid = field("Client id", { name: "clientid", value: "dashboard_" + Math.random().toString(16).slice(2, 10) });
    const user = field("Username", { name: "username" });
    const pass = field("Password", { name: "password", type: "password" });
    const ver = field("MQTT", { tag: "select", name: "protocol", options: ["5", "4"] });
    const state = h("span", { class: "badge", id: "ws-state" }, client && client.connected ? "connected" : "disconnected");
    const log = h("ol", { class: "messages", id: "ws-messages" });
    const setState = s => { state.textContent = s; state.className = "badge " + (s === "connected" ? "running" : "stopped"); };

    const connect = async e => {
      e.preventDefault();
      const mqtt = await loadMqtt();
      if (client) client.end(true);
      setState("connecting");
      client = mqtt.connect(url.input.value, {
        clientId: cid.input.value, username: user.input.value || undefined, password: pass.input.value || undefined,
        protocolVersion: Number(ver.input.value), reconnectPeriod: 0, connectTimeout: 5000, clean: true,
        // native timers: the default worker timers need a blob: worker, which the CSP refuses
        timerVariant: "native",
      });
      client.on("connect", () => setState("connected"));
      client.on("close", () => setState("disconnected"));
      client.on("error", err => toast("MQTT: " + err.message));
      client.on("message", (topic, payload, packet) => {
        log.prepend(h("li", {}, h("code", {}, topic), " ", h("small", {}, "qos " + packet.qos + (packet.retain ? " retained" : "")), h("pre", {}, payload.toString())));
        while (log.children.length > 200) log.lastChild.remove();
      });
    };
    const need = () => { if (!client || !client.connected) { toast("Connect first."); return false; } return true; };
    const stopic = field("Topic filter", { name: "sub_topic", value: "#" });
    const sqos = field("QoS", { tag: "select", name: "sub_qos", options: ["0", "1", "2"] });
    const ptopic = field("Topic", { name: "pub_topic", value: "dashboard/test" });
    const ppayload = field("Payload", { name: "pub_payload", value: "hello" });
    const pqos = field("QoS", { tag: "select", name: "pub_qos", options: ["0", "1", "2"] });
    const pret = h("label", { class: "check" }, h("input", { type: "checkbox", name: "pub_retain" }), " retain");

    main.append(
      h("form", { class: "inline", id: "ws-connect", onsubmit: connect }, url, cid, user, pass, ver,
        h("button", { type: "submit", class: "primary" }, "Connect"),
        h("button", { type: "button", onclick: () => { if (client) client.end(); } }, "Disconnect"), state),
      h("form", { class: "inline", id: "ws-sub", onsubmit: e => {
        e.preventDefault();
        if (need()) client.subscribe(stopic.input.value, { qos: Number(sqos.input.value) }, (err, granted) =>
          err ? toast(err.message) : toast("Subscribed: " + granted.map(g => g.topic + " qos " + g.qos).join(", "), "info"));
      } }, stopic, sqos, h("button", { type: "submit" }, "Subscribe")),
      h("form", { class: "inline", id: "ws-pub", onsubmit: e => {
        e.preventDefault();
        if (need()) client.publish(ptopic.input.value, ppayload.input.value, { qos: Number(pqos.input.value), retain: pret.firstChild.checked },
          err => err && toast(err.message));
      } }, ptopic, ppayload, pqos, pret, h("button", { type: "submit" }, "Publish")),
      h("h2", {}, "Messages"), log);
    return () => { if (client) client.end(true); client = null; };
  },
};
