// Heliograph status widget: include with
//   <script src=".../embed.js" async></script>
// and the page's current status appears where the script tag is.
(function () {
  var script = document.currentScript;
  var frame = document.createElement("iframe");
  frame.src = {{ src }};
  frame.title = "Service status";
  frame.loading = "lazy";
  frame.style.cssText = "border:0;width:100%;max-width:24rem;height:5.5rem;color-scheme:normal";
  if (script && script.parentNode) {
    script.parentNode.insertBefore(frame, script);
  } else {
    document.body.appendChild(frame);
  }
})();
