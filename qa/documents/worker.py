"""The extracting child process: `python -m qa.documents.worker LIMITS_JSON`.

Reads one request a line on stdin ({"path", "kind"}), and answers with two lines on stdout: "+"
once the format's library is loaded, then {"ok": the extracted document} or {"skip": why}. Its address space is capped first, so a file that
would explode in memory raises MemoryError here (or kills this process), never the indexer;
an alarm a little past the time limit ends it even when the indexer is no longer there to.
"""
from __future__ import annotations

import json
import math
import resource
import signal
import sys
from pathlib import Path


def main() -> None:
    from . import Limits, Unreadable, module_for

    limits = Limits(**json.loads(sys.argv[1]))
    cap = limits.memory_mb << 20
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a crash leaves no core file in the corpus
    out = sys.stdout.buffer
    for line in sys.stdin.buffer:
        request = json.loads(line)
        try:
            module, missing = module_for(request["kind"]), None  # the library's import is not the file's time
        except ImportError as exc:
            module, missing = None, exc.name
        out.write(b"+\n")
        out.flush()
        # The parent kills this process at the time limit; the alarm (whose default action ends the
        # process, even inside a library's C code) does it too should the parent itself be gone.
        signal.alarm(math.ceil(limits.seconds) + 5)
        try:
            if module is None:
                raise Unreadable(f"needs {missing}, which is not installed (install qa again: pip install -e .)")
            extracted = module.extract(Path(request["path"]), limits)
            reply = {"ok": extracted.to_json()}
        except Unreadable as exc:
            reply = {"skip": str(exc)}
        except MemoryError:
            reply = {"skip": f"needs more than {limits.memory_mb} MB to extract (QA_EXTRACT_MEMORY_MB raises the limit)"}
        except RecursionError:
            reply = {"skip": "is nested too deeply to extract"}
        except OSError as exc:
            reply = {"skip": f"cannot be read ({exc.strerror or exc})"}
        except Exception as exc:  # noqa: BLE001 - a library's own error on a bad file is a verdict on the file
            reply = {"skip": f"could not be extracted ({type(exc).__name__}: {str(exc)[:120]})".replace("\n", " ")}
        finally:
            signal.alarm(0)
        try:
            data = json.dumps(reply, ensure_ascii=False).encode("utf-8") + b"\n"
        except MemoryError:
            data = json.dumps({"skip": f"needs more than {limits.memory_mb} MB to extract"}).encode() + b"\n"
        out.write(data)
        out.flush()


if __name__ == "__main__":
    main()
