// Search on a copy of the site opened from disk (file://).
//
// The theme's search runs in a Web Worker, and browsers refuse `new Worker(url)` for a file:// page. Here, on a
// file:// page only, a Worker is a hidden frame of the same origin that runs the worker's script: messages to the
// worker are "message" events on the frame's window, and the script's postMessage() comes back as "message"
// events on the stand-in. (The theme's offline plugin does the same with a shim fetched from a CDN.)
(function () {
  "use strict";
  if (window.location.protocol !== "file:") {
    return;
  }

  class FrameWorker extends EventTarget {
    constructor(url) {
      super();
      this.onmessage = null;
      this.pending = [];
      this.frame = document.createElement("iframe");
      this.frame.hidden = true;
      this.frame.setAttribute("aria-hidden", "true");
      this.frame.srcdoc = "<!doctype html><title>search</title>";
      this.frame.addEventListener("load", () => {
        const inner = this.frame.contentWindow;
        inner.postMessage = (data) => this.deliver(data);
        inner.importScripts = () => {};
        const script = inner.document.createElement("script");
        script.src = new URL(url, document.baseURI).href;
        script.addEventListener("load", () => {
          this.ready = true;
          this.pending.splice(0).forEach((data) => this.postMessage(data));
        });
        inner.document.head.appendChild(script);
      });
      document.documentElement.appendChild(this.frame);
    }

    postMessage(data) {
      if (!this.ready) {
        this.pending.push(data);
        return;
      }
      const inner = this.frame.contentWindow;
      inner.dispatchEvent(new inner.MessageEvent("message", { data: data }));
    }

    deliver(data) {
      const event = new MessageEvent("message", { data: data });
      this.dispatchEvent(event);
      if (typeof this.onmessage === "function") {
        this.onmessage(event);
      }
    }

    terminate() {
      this.frame.remove();
    }
  }

  window.Worker = FrameWorker;
})();
