"""lightify: convert hand-written PyTorch training scripts into Lightning."""

from lightify.api import Conversion, convert_file, convert_source
from lightify.diagnostics import Finding, ParseFailure

__all__ = ["Conversion", "Finding", "ParseFailure", "convert_file", "convert_source"]
__version__ = "0.1.0"
