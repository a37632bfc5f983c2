"""Layer 5: the HTML report and the demo that chains every run.

`page.build_report` writes the page from run directories (`inputs` reads them; `sections` and `examples`
build its parts; figures are `plots`, token glyphs and diffs `render`, the template `templates/`);
`demo.run_demo` runs eval, shift, errors and compare on the shipped checkpoints and builds the report.
"""

from .page import build_report

__all__ = ["build_report"]
