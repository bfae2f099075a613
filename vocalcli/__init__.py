"""vocal: recommend songs by the singing voice.

Importing the package stays cheap (no torch, no librosa) so that `vocal --help` answers at once;
heavy modules are imported by the commands that need them.
"""

__version__ = "0.1.0"
