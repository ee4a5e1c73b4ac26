"""Input and output formats: how records get into pamlib and how results get out.

CSV, Parquet, JSON and FHIR are built-in plugins registered through the same
``pamlib_register_formats`` hook a third party would use.
"""

from pamlib.formats.base import (
    Format,
    InputFormat,
    OutputFormat,
    ReadChunk,
    ReadOptions,
    RecordBatch,
    Reject,
    ResultWriter,
    WriteOptions,
)

__all__ = [
    "Format",
    "InputFormat",
    "OutputFormat",
    "ReadChunk",
    "ReadOptions",
    "RecordBatch",
    "Reject",
    "ResultWriter",
    "WriteOptions",
]
