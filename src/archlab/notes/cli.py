"""The `archlab notes` command: reads the lab's results (when asked) and writes the tree. Apart
from the generator so that the generator stays torch-free and below the lab in the layers
(tests/test_imports.py): only this module reaches up into lab/."""

from __future__ import annotations

from . import NotesError, write_notes


def cmd_notes(args) -> int:
    results = None
    if args.lab is not None:
        from ..lab.core import read_results

        results = read_results(args.lab)
    try:
        files = write_notes(args.output, args.lab, results)
    except OSError as e:  # a file in the way, a symlink, no permission: one line, not a traceback
        raise NotesError(str(e)) from None
    print(f"wrote {len(files)} files to {args.output}")
    return 0
