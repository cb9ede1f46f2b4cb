"""Notebook regression settings for nbval (applies to ``pytest notebooks --nbval``).

Figures and widgets are compared for *presence*, not content: plotly JSON and widget views
carry random ids and float noise, so their payloads are left out of nbval's comparison, while
a stored figure or widget that a re-run no longer produces fails the cell.
"""
try:
    import nbval.plugin as _nbval
except ImportError:  # nbval not installed: nothing to configure
    _nbval = None

RICH = ("application/vnd.plotly.v1+json", "application/vnd.jupyter.widget-view+json",
        "text/html")

if _nbval is not None:
    _init = _nbval.IPyNbFile.__init__
    _compare = _nbval.IPyNbCell.compare_outputs

    def __init__(self, *args, **kwargs):
        _init(self, *args, **kwargs)
        self.skip_compare = tuple(self.skip_compare) + RICH

    def _rich(outputs):
        kinds = []
        for o in outputs:
            data = o.get("data", {})
            kinds += [k for k in RICH[:2] if k in data]
        return sorted(kinds)

    def _strip_widget_text(outputs):
        out = []
        for o in outputs:
            data = o.get("data")
            if data and RICH[1] in data:  # a widget's text/plain repr is not its content
                o = _nbval.NotebookNode(o, data={k: v for k, v in data.items()
                                                 if k != "text/plain"})
            out.append(o)
        return out

    def compare_outputs(self, test, ref, skip_compare=None):
        if _rich(ref) != _rich(test):
            self.comparison_traceback = [
                f"figures/widgets differ: stored {_rich(ref)}, produced {_rich(test)}"]
            return False
        return _compare(self, _strip_widget_text(test), _strip_widget_text(ref), skip_compare)

    _nbval.IPyNbFile.__init__ = __init__
    _nbval.IPyNbCell.compare_outputs = compare_outputs
