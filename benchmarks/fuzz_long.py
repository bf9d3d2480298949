"""A long fuzzing run of the core: the properties of tests/test_core_fuzz.py (every bad input refused with
a reason and counted, memory consistent, a reopened memory answers identically; the builders give a
sound object or a clear refusal; the QA episode reader answers every question and never crashes), with
many more examples than CI runs.

    python benchmarks/fuzz_long.py                      # 500 examples per property
    python benchmarks/fuzz_long.py --examples 5000

Writes benchmarks/results/fuzz_long.json: examples run, failures (with hypothesis' smallest example), time.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

PROPERTIES = {
    "ingest_and_reopen": "test_ingest_takes_or_refuses_every_batch_and_reopens_identically",
    "detection_builder": "test_the_detection_builder_gives_a_sound_detection_or_a_clear_refusal",
    "view_builder": "test_the_view_builder_gives_a_sound_view_or_a_clear_refusal",
    "qa_episode_reader": "test_the_qa_episode_reader_answers_every_question_and_never_crashes",
}


class _TmpFactory:
    """What pytest's tmp_path_factory gives the properties: fresh folders."""

    def __init__(self, root: Path) -> None:
        self.root, self.n = root, 0

    def mktemp(self, name: str) -> Path:
        self.n += 1
        path = self.root / f"{name}{self.n}"
        path.mkdir()
        return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=500)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/fuzz_long.json"))
    args = parser.parse_args()
    os.environ["ROBOMEM_FUZZ_EXAMPLES"] = str(args.examples)
    import test_core_fuzz as props  # reads the number of examples when imported

    results = {}
    for name, function in PROPERTIES.items():
        prop = getattr(props, function)
        start = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            try:
                if "tmp_path_factory" in prop.hypothesis.inner_test.__code__.co_varnames:
                    prop(tmp_path_factory=_TmpFactory(Path(tmp)))
                else:
                    prop()
                failure = None
            except Exception as error:  # a property that fails: hypothesis' smallest example
                failure = f"{type(error).__name__}: {error}"[:2000]
        results[name] = {"examples": args.examples, "failure": failure, "s": round(time.perf_counter() - start, 1)}
        print(name, results[name], flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"wrote {args.out}")
    sys.exit(1 if any(r["failure"] for r in results.values()) else 0)


if __name__ == "__main__":
    main()
