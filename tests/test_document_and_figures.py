"""Report figures (PNG files of plausible size) and the report document's Markdown, HTML and LaTeX renderings."""

from __future__ import annotations

import base64
import re
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from xstilts.analysis import document, figures
from xstilts.analysis.document import Details, Figure, Heading, Paragraph, Table

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class Line:
    label = "fit"

    def predict(self, x: np.ndarray) -> np.ndarray:
        return 50 + 2 * np.log10(x)


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk."""
    assert data[:8] == PNG_SIGNATURE
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def gains() -> pd.DataFrame:
    values = {"none": [0.0, 1.2, np.nan], "mnli": [3.1, -2.2, 0.4], "squad_v2": [5.5, 1.1, -0.3]}
    return pd.DataFrame(values, index=["de", "sw", "ur"])


def scaling_points() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "params": [1e7, 1e8, 1e9] * 2,
            "value": [70, 72, 77, 68, 71, 75],
            "low": [69, 71, np.nan, 66, 70, 74],
            "high": [71, 73, np.nan, 69, 72, 76],
            "series": ["mnli"] * 3 + ["none"] * 3,
        }
    )


def tiers() -> pd.DataFrame:
    frame = {"gain": [1.0, 2.0, -1.0, 0.5], "low": [0.5, 1.0, -2.0, 0.0], "high": [1.5, 3.0, 0.0, 1.0]}
    return pd.DataFrame({**frame, "series": ["a", "a", "b", "b"]}, index=[1, 3, 1, 3])


def counts() -> pd.DataFrame:
    return pd.DataFrame(
        {"k": [1, 2, 3], "mean": [1.0, 1.5, 1.7], "low": [0.5, 1.0, np.nan], "high": [1.5, 2.0, np.nan]}
    )


def pareto_points() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "latency_ms": [5.0, 10.0, 20.0, 8.0],
            "score": [60.0, 70.0, 75.0, 55.0],
            "label": ["small", "base", "large", "slow"],
            "front": [True, True, True, False],
        }
    )


def forest_rows() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "estimate": [1.2, -0.3, 2.0],
            "low": [0.2, -1.5, -0.1],
            "high": [2.2, 0.9, 4.1],
            "significant": [True, False, False],
        },
        index=["mnli", "qqp", "squad_v2"],
    )


def scatter_points() -> pd.DataFrame:
    return pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": [1.1, 2.3, 2.8], "label": ["a", "b", "c"]})


DRAW = {
    "heatmap": lambda p: figures.gain_heatmap(gains(), p),
    "scaling": lambda p: figures.scaling_curve(scaling_points(), p, fit=Line()),
    "tiers": lambda p: figures.tier_bars(tiers(), p),
    "tiers_one_series": lambda p: figures.tier_bars(tiers().drop(columns="series").iloc[:2], p),
    "counts": lambda p: figures.count_curve(counts(), p),
    "pareto": lambda p: figures.pareto(pareto_points(), p),
    "scatter": lambda p: figures.scatter_fit(scatter_points(), p, "size", "gain", fit=Line()),
    "forest": lambda p: figures.forest(forest_rows(), p),
}


@pytest.mark.parametrize("name", DRAW)
def test_figure_is_a_png_of_column_width(tmp_path, name):
    path = tmp_path / "figures" / f"{name}.png"
    assert DRAW[name](path) == path
    width, height = png_size(path.read_bytes())
    assert 400 <= width <= 1000  # 3.4 in at 200 dpi, give or take the tight bounding box
    assert 300 <= height <= 1400
    assert not list(path.parent.glob("*.tmp"))


@pytest.mark.parametrize(
    ("draw", "frame"),
    [
        (figures.gain_heatmap, pd.DataFrame()),
        (figures.scaling_curve, scaling_points().iloc[:0]),
        (figures.tier_bars, tiers().iloc[:0]),
        (figures.count_curve, counts().iloc[:0]),
        (figures.pareto, pareto_points().iloc[:0]),
    ],
)
def test_empty_input_is_refused(tmp_path, draw, frame):
    with pytest.raises(ValueError, match="nothing to plot"):
        draw(frame, tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_heatmap_mutes_cells_whose_interval_includes_zero(tmp_path):
    from matplotlib.image import imread

    plain = figures.gain_heatmap(gains(), tmp_path / "plain.png")
    noise = pd.DataFrame(True, index=gains().index, columns=gains().columns)
    muted = figures.gain_heatmap(gains(), tmp_path / "muted.png", noise)
    assert imread(muted)[..., :3].mean() > imread(plain)[..., :3].mean() + 0.02  # washed out: lighter


def test_forest_grid_has_a_panel_per_setting(tmp_path):
    rows = pd.concat([forest_rows().reset_index(names="language").assign(panel=p) for p in ("a", "b", "c", "d")])
    path = figures.forest_grid(rows.iloc[:-1], tmp_path / "grid.png")  # panel d lacks one language
    width, height = png_size(path.read_bytes())
    assert width > 1000 and 300 <= height <= 2000  # three panels across, two rows


def test_missing_columns_are_named(tmp_path):
    with pytest.raises(ValueError, match="label"):
        figures.scatter_fit(scatter_points().drop(columns="label"), tmp_path / "x.png", "x", "y")


def fmt(x: object) -> str:
    return "" if pd.isna(x) else f"{x:.1f}"


def percent(x: object) -> str:
    return f"{x:.0f}%"


@pytest.fixture
def report(tmp_path) -> tuple[Path, list]:
    scores = pd.DataFrame({"none": [80.25, 61.0], "mnli": [81.0, np.nan]}, index=["en", "sw_KE"])
    shares = pd.DataFrame({"acc & f1": [12.0, 100.0]}, index=["low_res", "high_res"])
    heat = figures.gain_heatmap(gains(), tmp_path / "figures" / "gains.png")
    tier = figures.tier_bars(tiers(), tmp_path / "figures" / "tiers.png")
    blocks = [
        Heading("Study report"),
        Paragraph("Gains with p < 0.05 use `paired_bootstrap` & <b>seeds</b>."),
        Heading("Scores", 2),
        Table(scores, "language", fmt, caption="Test scores by `setting`"),
        Figure(heat, "Zero-shot gains over `none`"),
        Heading("Tiers", 2),
        Details("All tiers", (Table(shares, "tier", percent),)),
        Figure(tier, "Gains by tier <per series>"),
    ]
    return tmp_path, blocks


def markdown_tables(text: str) -> list[list[list[str]]]:
    """Each pipe table's rows of cells, separator rows left out."""
    tables, current = [], []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            if not line.startswith("|---"):
                current.append(line[2:-2].split(" | "))
        elif current:
            tables.append(current)
            current = []
    return tables


def latex_tables(text: str) -> list[list[list[str]]]:
    """Each tabular's rows of cells (header and body)."""
    tables = []
    for body in re.findall(r"\\toprule\n(.*?)\n\\bottomrule", text, flags=re.DOTALL):
        lines = [line for line in body.splitlines() if line != r"\midrule"]
        tables.append([line.removesuffix(r" \\").split(" & ") for line in lines])
    return tables


def test_markdown_table_and_figures(report):
    root, blocks = report
    text = document.markdown(blocks, root)
    expected = (
        "Test scores by `setting`\n\n"
        "| language | none | mnli |\n"
        "|---|---|---|\n"
        "| en | 80.2 | 81.0 |\n"
        "| sw_KE | 61.0 |  |\n"
    )
    assert expected in text
    assert "# Study report\n\n" in text and "\n## Tiers\n" in text
    assert "![Zero-shot gains over `none`](figures/gains.png)\n\nZero-shot gains over `none`" in text
    assert "](figures/tiers.png)" in text
    assert "**All tiers**\n\n| tier | acc & f1 |" in text  # collapsed in HTML, in place in Markdown


def test_html_is_self_contained_and_escaped(report):
    root, blocks = report
    page = document.html(blocks, root, title="Study <1>")
    assert page.startswith("<!DOCTYPE html>") and "<title>Study &lt;1&gt;</title>" in page
    images = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)" alt="([^"]+)" data-file="([^"]+)">', page)
    assert (
        [alt for _, alt, _ in images] == [file for _, _, file in images] == ["figures/gains.png", "figures/tiers.png"]
    )
    for data, _, file in images:
        assert base64.b64decode(data, validate=True) == (root / file).read_bytes()
    assert "p &lt; 0.05" in page and "&lt;b&gt;seeds&lt;/b&gt;" in page and "<b>" not in page
    assert "<code>paired_bootstrap</code>" in page
    assert re.search(
        r"<details><summary>All tiers</summary>\n<div class=\"table\"><table>.*?</table></div>\n</details>",
        page,
        re.DOTALL,
    )
    assert "<figcaption>Gains by tier &lt;per series&gt;</figcaption>" in page
    assert '<th class="num">none</th>' in page and '<td class="num">80.2</td>' in page
    assert "src=" not in page.replace('src="data:image/png;base64,', "")  # nothing fetched from elsewhere


def test_latex_holds_the_markdown_cells_escaped(report):
    root, blocks = report
    tex = document.latex(blocks)
    md = markdown_tables(document.markdown(blocks, root))
    assert len(md) == 2
    assert latex_tables(tex) == [[[document.latex_escape(c) for c in row] for row in table] for table in md]
    assert r"sw\_KE" in tex and r"12\%" in tex and r"acc \& f1" in tex
    assert tex.startswith("%") and r"\usepackage{booktabs}" in tex.splitlines()[0]
    assert tex.count(r"\begin{table}") == tex.count(r"\end{table}") == 2
    assert tex.count(r"\begin{tabular}") == tex.count(r"\end{tabular}") == 2
    assert r"\caption{Test scores by \texttt{setting}}" in tex
    assert "includegraphics" not in tex and "Study report" not in tex


def test_latex_escape_every_special_character():
    assert document.latex_escape(r"50% & a_b #1 $x$ {y} ~z ^w \v") == (
        r"50\% \& a\_b \#1 \$x\$ \{y\} \textasciitilde{}z \textasciicircum{}w \textbackslash{}v"
    )


def test_write_only_the_formats_asked(report):
    root, blocks = report
    written = document.write(blocks, root, "Study", {"md", "latex"})
    assert written == [root / "report.md", root / "tables.tex"]
    assert not (root / "report.html").exists()
    assert (root / "report.md").read_text() == document.markdown(blocks, root)
    document.write(blocks, root, "Study", {"html"})
    assert (root / "report.html").read_text().startswith("<!DOCTYPE html>")
    with pytest.raises(ValueError, match="pdf"):
        document.write(blocks, root, "Study", {"pdf"})
