// The web chat page of Trợ lý HTX: plain ES2020, no framework, no build step.
//
// Talks to the JSON API of bot/channels/webchat.py:
//   POST /chat/api/messages  {"session", "text"} or {"session", "payload", "label"}
//   GET  /chat/api/inbox?session=S  (long poll for replies that arrive later)
// Everything from the server or the member is rendered with textContent and
// DOM nodes, never parsed as HTML; the page's CSP forbids inline scripts/styles.
// A reply's image ({"url", "alt"}, a QR code) is an <img> above its text, shown
// only from this page's own origin (the CSP allows img-src 'self').
"use strict";

(() => {
  const SESSION_KEY = "coopbot.session";
  const SESSION_PATTERN = /^[A-Za-z0-9_-]{16,64}$/;
  const SESSION_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  const SESSION_LENGTH = 32;
  const MESSAGES_URL = "/chat/api/messages";
  const INBOX_URL = "/chat/api/inbox";
  const POLL_MIN_DELAY_MS = 1000;
  const POLL_MAX_DELAY_MS = 30000;
  const NOTICE_MS = 8000;

  const NETWORK_ERROR = "Không gửi được tin nhắn, bạn thử lại nhé.";
  const GENERIC_ERROR = "Máy chủ đang gặp sự cố, bạn thử lại sau ít phút nhé.";
  // Shown when the server's own error text is not Vietnamese.
  const STATUS_ERRORS = {
    400: "Tin nhắn không hợp lệ, bạn kiểm tra lại rồi gửi nhé.",
    413: "Tin nhắn quá dài, bạn rút gọn lại rồi gửi nhé.",
    429: "Bạn gửi hơi nhanh, đợi vài giây rồi thử lại nhé.",
  };

  // Links in bot text: http(s) URLs up to a space or a closing quote/bracket.
  const URL_PATTERN = /https?:\/\/[^\s<>"'«»]+/g;
  const URL_TRAILING = /[.,;:!?)\]}]+$/;

  const chatLog = document.getElementById("chat-log");
  const typing = document.getElementById("typing");
  const form = document.getElementById("chat-form");
  const input = document.getElementById("chat-input");
  const sendButton = document.getElementById("chat-send");

  const session = loadSession();
  let busy = false;

  class ChatError extends Error {}

  // -- session -----------------------------------------------------------------

  function newSessionId() {
    const bytes = new Uint8Array(SESSION_LENGTH);
    crypto.getRandomValues(bytes);
    // 64 symbols: the low 6 bits of each byte pick one without bias.
    return Array.from(bytes, (b) => SESSION_ALPHABET[b & 63]).join("");
  }

  function loadSession() {
    let id = null;
    try {
      id = window.localStorage.getItem(SESSION_KEY);
    } catch (_) {
      // Storage disabled: the session lasts as long as the page.
    }
    if (typeof id !== "string" || !SESSION_PATTERN.test(id)) {
      id = newSessionId();
      try {
        window.localStorage.setItem(SESSION_KEY, id);
      } catch (_) {
        // Same as above.
      }
    }
    return id;
  }

  // -- rendering -----------------------------------------------------------------

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function safeUrl(candidate) {
    try {
      const url = new URL(candidate);
      return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
    } catch (_) {
      return null;
    }
  }

  // Appends text to a node as text nodes, with http(s) URLs as <a> elements.
  function appendLinkified(node, text) {
    let last = 0;
    for (const match of text.matchAll(URL_PATTERN)) {
      const shown = match[0].replace(URL_TRAILING, "");
      const href = safeUrl(shown);
      if (!href) continue;
      if (match.index > last) node.append(document.createTextNode(text.slice(last, match.index)));
      const link = element("a", "msg-link", shown);
      link.href = href;
      link.target = "_blank";
      link.rel = "noopener noreferrer";
      node.append(link);
      last = match.index + shown.length;
    }
    if (last < text.length) node.append(document.createTextNode(text.slice(last)));
  }

  // The reply's image as an <img>, or null when it is missing or not on our origin.
  function imageOf(reply) {
    const image = reply.image;
    if (!image || typeof image !== "object" || typeof image.url !== "string") return null;
    let url;
    try {
      url = new URL(image.url, window.location.origin);
    } catch (_) {
      return null;
    }
    if (url.origin !== window.location.origin) return null;
    const img = element("img", "msg-image");
    img.src = url.pathname + url.search;
    img.alt = String(image.alt ?? "");
    img.loading = "lazy";
    img.decoding = "async";
    return img;
  }

  function scrollToBottom() {
    chatLog.scrollTop = chatLog.scrollHeight;
  }

  function addUserMessage(text) {
    const message = element("div", "msg msg-user");
    message.append(element("div", "msg-text", text));
    chatLog.append(message);
    scrollToBottom();
    return message;
  }

  // Sets a bot message's id, image, text and buttons (a new message, or an edit in place).
  function fillBotMessage(message, reply) {
    message.dataset.id = String(reply.id ?? "");
    const text = element("div", "msg-text");
    appendLinkified(text, String(reply.text ?? ""));
    const image = imageOf(reply);
    const parts = image ? [image, text] : [text];
    const buttons = Array.isArray(reply.buttons) ? reply.buttons : [];
    if (buttons.length > 0) {
      const choices = element("div", "choices");
      for (const b of buttons) {
        if (!b || typeof b.payload !== "string") continue;
        const button = element("button", "choice", String(b.label ?? ""));
        button.type = "button";
        button.dataset.payload = b.payload;
        choices.append(button);
      }
      parts.push(choices);
    }
    message.replaceChildren(...parts);
  }

  function addBotMessage(reply) {
    const message = element("div", "msg msg-bot");
    fillBotMessage(message, reply);
    chatLog.append(message);
    return message;
  }

  function showNotice(text) {
    const notice = element("div", "msg-notice", text);
    notice.setAttribute("role", "status");
    chatLog.append(notice);
    scrollToBottom();
    window.setTimeout(() => notice.remove(), NOTICE_MS);
  }

  function showError(text) {
    const error = element("div", "msg-error", text);
    error.setAttribute("role", "alert");
    chatLog.append(error);
    scrollToBottom();
  }

  function clearErrors() {
    for (const error of chatLog.querySelectorAll(".msg-error")) error.remove();
  }

  function isNotice(reply) {
    return Boolean(reply.notice) && !(Array.isArray(reply.buttons) && reply.buttons.length);
  }

  // Shows the server's replies; an `edit` reply replaces `source`, the message
  // whose button was clicked (when there is one), instead of being appended.
  function showReplies(replies, source) {
    let edited = false;
    for (const reply of replies) {
      if (!reply || typeof reply !== "object") continue;
      if (isNotice(reply)) {
        showNotice(String(reply.text ?? ""));
      } else if (reply.edit && source && source.isConnected && !edited) {
        fillBotMessage(source, reply);
        edited = true;
      } else {
        addBotMessage(reply);
      }
    }
    if (edited && replies.length === 1) {
      source.scrollIntoView({ block: "nearest" });
    } else {
      scrollToBottom();
    }
  }

  // -- talking to the server --------------------------------------------------------

  function hasVietnameseLetters(text) {
    return /[À-ỹ]/.test(text);
  }

  function errorText(status, data) {
    const given = data && typeof data.error === "string" ? data.error : "";
    if (given && hasVietnameseLetters(given)) return given;
    return STATUS_ERRORS[status] || GENERIC_ERROR;
  }

  async function postMessage(body) {
    let response;
    try {
      response = await fetch(MESSAGES_URL, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
        cache: "no-store",
        credentials: "same-origin",
      });
    } catch (_) {
      throw new ChatError(NETWORK_ERROR);
    }
    let data = null;
    try {
      data = await response.json();
    } catch (_) {
      data = null;
    }
    if (!response.ok) throw new ChatError(errorText(response.status, data));
    if (!data || !Array.isArray(data.replies)) throw new ChatError(GENERIC_ERROR);
    return data.replies;
  }

  function setBusy(value) {
    busy = value;
    sendButton.disabled = value;
    typing.hidden = !value;
    chatLog.setAttribute("aria-busy", value ? "true" : "false");
    if (value) scrollToBottom();
  }

  function setChoicesDisabled(message, disabled) {
    if (!message) return;
    for (const button of message.querySelectorAll("button.choice")) button.disabled = disabled;
  }

  async function sendText() {
    const text = input.value.trim();
    if (busy || !text) return;
    clearErrors();
    const bubble = addUserMessage(text);
    input.value = "";
    setBusy(true);
    try {
      showReplies(await postMessage({ session, text }), null);
    } catch (error) {
      bubble.remove();
      if (!input.value.trim()) input.value = text;
      showError(error instanceof ChatError ? error.message : GENERIC_ERROR);
    } finally {
      setBusy(false);
      input.focus();
    }
  }

  async function choose(button) {
    const payload = button.dataset.payload;
    if (busy || !payload) return;
    const label = button.textContent;
    const message = button.closest(".msg-bot");
    clearErrors();
    setChoicesDisabled(message, true);
    setBusy(true);
    try {
      const replies = await postMessage({ session, payload, label });
      // Paging (an edit) and acknowledgements (a notice) are no new turn: no user bubble.
      const quiet = replies.length > 0 && replies.every((r) => r && (r.edit || isNotice(r)));
      if (!quiet && label) addUserMessage(label);
      showReplies(replies, message);
    } catch (error) {
      showError(error instanceof ChatError ? error.message : GENERIC_ERROR);
    } finally {
      setChoicesDisabled(message, false);
      setBusy(false);
    }
  }

  async function start() {
    setBusy(true);
    try {
      showReplies(await postMessage({ session, payload: "cmd:start", label: "" }), null);
    } catch (error) {
      showError(error instanceof ChatError ? error.message : GENERIC_ERROR);
    } finally {
      setBusy(false);
    }
  }

  // -- the inbox: replies that arrive later (a staff member's answer) ---------------

  function sleep(ms) {
    return new Promise((resolve) => window.setTimeout(resolve, ms));
  }

  function whenVisible() {
    return new Promise((resolve) => {
      const check = () => {
        if (!document.hidden) {
          document.removeEventListener("visibilitychange", check);
          resolve();
        }
      };
      document.addEventListener("visibilitychange", check);
      check();
    });
  }

  async function pollInbox() {
    const url = `${INBOX_URL}?session=${encodeURIComponent(session)}`;
    let delay = POLL_MIN_DELAY_MS;
    for (;;) {
      if (document.hidden) await whenVisible();
      try {
        const response = await fetch(url, { cache: "no-store", credentials: "same-origin" });
        if (!response.ok) throw new Error(`inbox: HTTP ${response.status}`);
        const data = await response.json();
        if (data && Array.isArray(data.replies) && data.replies.length > 0) {
          showReplies(data.replies, null);
        }
        delay = POLL_MIN_DELAY_MS;
      } catch (_) {
        await sleep(delay);
        delay = Math.min(delay * 2, POLL_MAX_DELAY_MS);
      }
    }
  }

  // -- events ---------------------------------------------------------------------------

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    sendText();
  });

  input.addEventListener("keydown", (event) => {
    // Enter sends, Shift+Enter is a newline; never while an input method composes
    // (Vietnamese Telex/VNI typing uses composition).
    if (event.key !== "Enter" || event.shiftKey || event.isComposing || event.keyCode === 229) {
      return;
    }
    event.preventDefault();
    sendText();
  });

  chatLog.addEventListener("click", (event) => {
    const target = event.target instanceof Element ? event.target : null;
    const button = target ? target.closest("button.choice") : null;
    if (button && chatLog.contains(button) && !button.disabled) choose(button);
  });

  start().finally(() => pollInbox());
})();
