"""A download link for a file in the kernel's file system, for JupyterLab and Voilà alike.

Neither front end serves an arbitrary kernel-side file by URL (Voilà serves none by default),
and browsers refuse ``data:`` links of more than a couple of megabytes. So the link is a small
anywidget (its JavaScript inline, nothing fetched at run time): a file of up to
``INLINE_LIMIT`` bytes is a ``data:`` link; a larger one is sent on click in chunks of
``CHUNK`` bytes over the widget's comm and handed to the browser as a Blob, so any size the
browser can hold works, and the kernel reads the file a chunk at a time.
"""

from __future__ import annotations

import base64
from pathlib import Path

import anywidget
import traitlets

INLINE_LIMIT = 1 << 20  # 1 MiB: a data: link below this size
CHUNK = 1 << 20

_ESM = r"""
function render({ model, el }) {
  const link = document.createElement("a");
  link.className = "crm-download-link";
  let blobUrl = null;
  let chunks = [];
  const label = () => `Download ${model.get("filename")} (${model.get("size_text")})`;
  function update() {
    if (blobUrl) { URL.revokeObjectURL(blobUrl); blobUrl = null; }
    chunks = [];
    const name = model.get("filename");
    link.textContent = name ? label() : "";
    link.download = name;
    link.href = model.get("href") || "#";
    el.style.display = name ? "" : "none";
  }
  link.addEventListener("click", (event) => {
    if (model.get("href") || blobUrl) return;  // the browser downloads it
    event.preventDefault();
    chunks = [];
    link.textContent = "Preparing the download…";
    model.send({ type: "fetch" });
  });
  model.on("msg:custom", (msg, buffers) => {
    if (!msg || msg.type !== "chunk") return;
    if (buffers && buffers.length) chunks.push(buffers[0]);
    if (msg.last) {
      blobUrl = URL.createObjectURL(new Blob(chunks, { type: model.get("mime") }));
      chunks = [];
      link.href = blobUrl;
      link.textContent = label();
      link.click();
    }
  });
  model.on("change:filename", update);
  model.on("change:href", update);
  update();
  el.appendChild(link);
}
export default { render };
"""


def human_size(size: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:,} {unit}" if unit == "bytes" else f"{size:,.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


class DownloadLink(anywidget.AnyWidget):
    """``offer(path, mime)`` shows a link that downloads ``path``."""

    _esm = _ESM
    filename = traitlets.Unicode("").tag(sync=True)
    size_text = traitlets.Unicode("").tag(sync=True)
    mime = traitlets.Unicode("application/octet-stream").tag(sync=True)
    href = traitlets.Unicode("").tag(sync=True)  # a data: URI for small files, else empty

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.path: Path | None = None
        self.chunks_sent = 0
        self.on_msg(self._on_msg)
        self.add_class("crm-download")

    def offer(self, path: Path, mime: str, inline_limit: int | None = None) -> None:
        self.path = Path(path)
        size = self.path.stat().st_size
        inline_limit = INLINE_LIMIT if inline_limit is None else inline_limit
        self.mime = mime
        self.size_text = human_size(size)
        if size <= inline_limit:
            encoded = base64.b64encode(self.path.read_bytes()).decode("ascii")
            self.href = f"data:{mime};base64,{encoded}"
        else:
            self.href = ""
        self.filename = self.path.name

    def clear(self) -> None:
        self.path = None
        self.href = ""
        self.filename = ""

    def _on_msg(self, _widget, content, _buffers) -> None:
        if isinstance(content, dict) and content.get("type") == "fetch":
            self.stream()

    def stream(self) -> None:
        """Send the file in chunks (the browser asks for it when the link is clicked)."""
        if self.path is None:
            return
        index = 0
        with self.path.open("rb") as f:
            chunk = f.read(CHUNK)
            while True:
                following = f.read(CHUNK)
                self.send({"type": "chunk", "index": index, "last": not following}, [chunk])
                self.chunks_sent += 1
                if not following:
                    return
                chunk, index = following, index + 1
