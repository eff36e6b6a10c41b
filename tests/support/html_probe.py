"""JavaScript run inside a bokeh report page by the browser tests (``tests/support/browser.py``).

``BOKEH_READY`` is true once bokeh has built and drawn the document. ``BOKEH_PROBE`` returns,
for every plot of the page: its name, whether it is visible, its on-screen size, each glyph
renderer with its data length and how many of its points were mapped to screen coordinates
by the last paint, and how many saturated (coloured, not grey/white) pixels the plot's canvas
holds -- axes and grid are grey, so coloured pixels are drawn traces.
"""

from __future__ import annotations

BOKEH_READY = "window.Bokeh && Bokeh.documents.length > 0 && Bokeh.documents[0].is_idle"

BOKEH_PROBE = r"""
(() => {
  const {PlotView} = Bokeh.require("models/plots/plot");
  function* walk(views) {
    for (const v of views) {
      yield v;
      if (v.child_views) yield* walk(v.child_views.values());
    }
  }
  const screenKeys = ["sx", "sleft", "sx0", "sright"];
  const out = [];
  for (const v of walk(Bokeh.index)) {
    if (!(v instanceof PlotView)) continue;
    const rect = v.el.getBoundingClientRect();
    const renderers = [];
    for (const rv of v.renderer_views.values()) {
      if (!rv.glyph || !rv.model.data_source) continue;
      const key = screenKeys.find(k => rv.glyph[k] !== undefined);
      const arr = key ? rv.glyph[key] : [];
      let mapped = 0;
      for (const x of arr) if (Number.isFinite(x)) mapped++;
      renderers.push({name: rv.model.name, n: rv.model.data_source.get_length(), mapped: mapped,
                      visible: rv.model.visible});
    }
    let coloured = 0;
    if (v.model.visible && rect.width > 0) {
      const canvas = v.export("png").canvas;
      const px = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
      for (let i = 0; i < px.length; i += 4) {
        const hi = Math.max(px[i], px[i + 1], px[i + 2]), lo = Math.min(px[i], px[i + 1], px[i + 2]);
        if (px[i + 3] > 0 && hi - lo > 60) coloured++;
      }
    }
    out.push({name: v.model.name, visible: v.model.visible, width: rect.width, height: rect.height,
              renderers: renderers, coloured: coloured, title: v.model.title ? v.model.title.text : ""});
  }
  return out;
})()
"""

SHOW_LOG = ("(() => { const t = Bokeh.documents[0].get_model_by_name('log_toggle'); t.active = true; "
            "return t.active })()")
