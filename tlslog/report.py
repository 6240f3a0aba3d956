"""Frames to text: aligned tables, Markdown, CSV, JSON and Parquet, with log text made safe.

Text that comes from logs is untrusted: Markdown cells are backslash-escaped, CSV cells that a spreadsheet
would run as a formula get a leading ``'``, and control characters never reach a terminal.

>>> import pandas as pd
>>> print(render(pd.DataFrame({"peer": ["a|b"], "share": [0.5]}), "markdown"))
| peer | share |
|---|---:|
| a\\|b | 50.0% |
"""

import json
import re
from enum import StrEnum
from os import PathLike

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq


class Format(StrEnum):
    """Output formats of the tabular commands."""

    table = "table"
    markdown = "markdown"
    csv = "csv"
    json = "json"


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_MD_SPECIAL = re.compile(r"([\\|<>*_`\[\]$])")
_FORMULA_START = ("=", "+", "-", "@")


def clean(text: str) -> str:
    """Make log text safe for one terminal line: control characters (ANSI escapes, newlines) become ``\\xNN``.

    >>> clean("a\\x1b[31mb")
    'a\\\\x1b[31mb'
    """
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def md_escape(text: str) -> str:
    """Backslash-escape the characters that Markdown (and HTML inside it) would interpret.

    >>> md_escape("<b>*x*</b>")
    '\\\\<b\\\\>\\\\*x\\\\*\\\\</b\\\\>'
    """
    return _MD_SPECIAL.sub(r"\\\1", clean(text))


def csv_safe(text: str) -> str:
    """Neutralise a cell a spreadsheet would evaluate (``=``, ``+``, ``-``, ``@`` first); control characters
    become ``\\xNN`` as in `clean` (a CR would start a new row for most CSV readers, unquoted).

    >>> csv_safe("=1+2"), csv_safe("ok"), csv_safe("x\\r=1+1")
    ("'=1+2", 'ok', 'x\\\\x0d=1+1')
    """
    text = clean(text)
    return "'" + text if text.startswith(_FORMULA_START) else text


# -- cells ------------------------------------------------------------------------------------------


def _is_share(name: str) -> bool:
    return name == "share" or name.endswith("_share")


def _join(v: object) -> str:
    return ", ".join(map(str, v)) if isinstance(v, list | tuple) else ""


def _is_list(s: pd.Series) -> bool:
    return (isinstance(s.dtype, pd.ArrowDtype) and "list" in str(s.dtype)) or (
        s.dtype == object and any(isinstance(v, list | tuple) for v in s.head(50))
    )


def _column_text(s: pd.Series) -> list[str]:
    """One column as display strings; missing values become ``""``."""
    missing = s.isna().to_numpy()
    if _is_list(s):
        out = [_join(v) for v in s.tolist()]
    elif pd.api.types.is_datetime64_any_dtype(s):
        dates_only = bool((s.dropna() == s.dropna().dt.normalize()).all())
        out = s.dt.strftime("%Y-%m-%d" if dates_only else "%Y-%m-%d %H:%M:%S").tolist()
    elif pd.api.types.is_bool_dtype(s):
        out = ["yes" if v is True else "no" for v in s.astype(object).tolist()]
    elif pd.api.types.is_float_dtype(s):
        fmt = "{:.1%}" if _is_share(str(s.name)) else "{:,.2f}"
        out = [fmt.format(v) if v == v else "" for v in s.tolist()]
    else:
        out = [str(v) for v in s.astype(object).tolist()]
    return ["" if m else clean(v) for v, m in zip(out, missing, strict=True)]


def cells(df: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    """Column names and rows of display strings (shares as percentages, dates ISO, lists joined)."""
    cols = [_column_text(df[c]) for c in df.columns]
    return [clean(str(c)) for c in df.columns], [list(r) for r in zip(*cols, strict=True)] if cols else []


def numeric_columns(df: pd.DataFrame) -> list[bool]:
    return [
        pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c]) for c in df.columns
    ]


# -- render -----------------------------------------------------------------------------------------


def text_table(df: pd.DataFrame) -> str:
    """Plain aligned text (numbers right-aligned), for pipes and files."""
    names, rows = cells(df)
    widths = [max([len(n), *(len(r[i]) for r in rows)]) for i, n in enumerate(names)]
    right = numeric_columns(df)

    def line(values: list[str]) -> str:
        parts = [v.rjust(w) if r else v.ljust(w) for v, w, r in zip(values, widths, right, strict=True)]
        return "  ".join(parts).rstrip()

    return "\n".join([line(names), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def markdown_table(df: pd.DataFrame) -> str:
    """A GitHub-style Markdown table, every cell escaped."""
    names, rows = cells(df)
    right = numeric_columns(df)
    out = [
        "| " + " | ".join(md_escape(n) for n in names) + " |",
        "|" + "|".join("---:" if r else "---" for r in right) + "|",
    ]
    out += ["| " + " | ".join(md_escape(v) for v in row) + " |" for row in rows]
    return "\n".join(out)


def _textual(df: pd.DataFrame) -> pd.DataFrame:
    """Lists joined to text, so CSV and spreadsheet-safety see one string per cell."""
    lists = {
        c: pd.Series(
            [_join(v) if isinstance(v, list | tuple) else None for v in df[c].tolist()],
            index=df.index,
            dtype="str",
        )
        for c in df.columns
        if _is_list(df[c])
    }
    return df.assign(**lists) if lists else df


def to_csv(df: pd.DataFrame) -> str:
    """CSV with a header; text cells that a spreadsheet would evaluate are prefixed with ``'``."""
    df = _textual(df)
    text_cols = [
        c
        for c in df.columns
        if not pd.api.types.is_numeric_dtype(df[c])
        and not pd.api.types.is_datetime64_any_dtype(df[c])
        and not pd.api.types.is_bool_dtype(df[c])
    ]
    safe = {c: df[c].astype("str").map(csv_safe, na_action="ignore") for c in text_cols}
    return df.assign(**safe).to_csv(index=False, date_format="%Y-%m-%dT%H:%M:%S")


def to_json(df: pd.DataFrame) -> str:
    """JSON records: ISO timestamps, missing values as ``null``, lists as arrays."""
    return df.to_json(orient="records", date_format="iso", date_unit="s", force_ascii=False)


def to_parquet(df: pd.DataFrame, path: str | PathLike[str]) -> None:
    """Write Parquet that pandas reads back with the same dtypes.

    pandas records list columns as ``list<item: string>[pyarrow]`` in its metadata and cannot read that
    name back; those columns are recorded as ``object`` (they come back as arrays of str).
    """
    table = pa.Table.from_pandas(df, preserve_index=False)
    meta = json.loads(table.schema.metadata[b"pandas"])
    for col in meta["columns"]:
        if str(col.get("numpy_type", "")).startswith("list<"):
            col["numpy_type"] = "object"
    table = table.replace_schema_metadata({**table.schema.metadata, b"pandas": json.dumps(meta).encode()})
    pq.write_table(table, path)


def render(df: pd.DataFrame, fmt: Format | str = Format.table) -> str:
    """Render a frame as aligned text, Markdown, CSV or JSON.

    >>> import pandas as pd
    >>> print(render(pd.DataFrame({"n": [1, 22]}), "csv"))
    n
    1
    22
    <BLANKLINE>
    """
    fmt = Format(fmt)
    if fmt is Format.json:
        return to_json(df)
    if fmt is Format.csv:
        return to_csv(df)
    return markdown_table(df) if fmt is Format.markdown else text_table(df)


def drop_empty(df: pd.DataFrame) -> pd.DataFrame:
    """Drop the columns that hold no value at all (the events frame is wide and sparse)."""
    return df.loc[:, df.notna().any().to_numpy()] if len(df) else df
