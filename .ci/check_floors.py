"""Checks that setup.cfg's version floors are the versions CI tests.

Every package pinned in .ci/oldest.txt (``name==version``) must appear in
setup.cfg only as ``name>=version`` (in install_requires and in every extra
that names it), and keras, tensorflow and jax must have such a floor. So
the floors cannot drift from what the oldest-versions stage of .ci/run
installs. Standard library only; exits non-zero with the mismatches.
"""

import configparser
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
REQUIRED = ("keras", "tensorflow", "jax")
LINE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*(.*)$")


def norm(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def requirements(text):
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].split(";", 1)[0].strip()
        if line:
            match = LINE.match(line)
            if not match:
                raise SystemExit(f"cannot read requirement {raw!r}")
            yield norm(match.group(1)), match.group(2).replace(" ", "")


def main():
    pins = {}
    for name, spec in requirements((ROOT / ".ci" / "oldest.txt").read_text()):
        if not spec.startswith("==") or "," in spec:
            raise SystemExit(f".ci/oldest.txt: pin {name} exactly (name==version); got {spec!r}")
        pins[name] = spec[2:]

    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    sections = {"install_requires": cfg.get("options", "install_requires", fallback="")}
    for extra, text in cfg.items("options.extras_require"):
        sections[f"extras_require[{extra}]"] = text

    errors, floored = [], set()
    for where, text in sections.items():
        for name, spec in requirements(text):
            if name not in pins:
                continue
            if spec != f">={pins[name]}":
                errors.append(
                    f"setup.cfg {where}: {name}{spec or ' (no floor)'}, but CI tests "
                    f"{name}=={pins[name]} (.ci/oldest.txt): write {name}>={pins[name]}"
                )
            floored.add(name)
    for name in REQUIRED:
        if name not in pins:
            errors.append(f".ci/oldest.txt pins no {name} version")
        elif name not in floored:
            errors.append(f"setup.cfg declares no {name}>={pins[name]}")
    if errors:
        print("Version floors differ from the versions CI tests:", *errors, sep="\n  ",
              file=sys.stderr)
        return 1
    print("setup.cfg floors = .ci/oldest.txt pins:",
          ", ".join(f"{n}>={v}" for n, v in sorted(pins.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
