"""What `func azure functionapp publish` would upload from this repository.

Core Tools walks the project directory, always leaving out the `.git` and `.vscode`
directories and a few files (`.funcignore`, `.gitignore`, `local.settings.json`,
`project.lock.json`, `appsettings.json`), and keeps a file when the rules of
`.funcignore` accept its path relative to the root. It reads those rules with its own
C# port of the npm package `gitignore-parser` 0.0.2 (codemix), not with git's rules; the
package itself (pinned in package.json) decides here, run by node. The C# port and the
package agree on a rule with at most one `**` and one other `*` (the package replaces
only the first of each), which `.funcignore` keeps to.

The paths tried are the repository's files (tracked or new, as git lists them) and the
local state a developer's checkout holds beside them (venvs, node_modules, caches,
outputs, local.settings.json), which git ignores and the upload must too.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path, PurePosixPath

ROOT = Path(__file__).resolve().parents[2]
FUNCIGNORE = ROOT / ".funcignore"
PARSER = ROOT / "node_modules" / "gitignore-parser" / "lib" / "index.js"

ALWAYS_LEFT_OUT_DIRS = {".git", ".vscode"}
ALWAYS_LEFT_OUT_FILES = {
    ".funcignore",
    ".gitignore",
    "local.settings.json",
    "project.lock.json",
    "appsettings.json",
}
LOCAL_STATE = (
    ".venv/bin/python",
    ".venv/lib/python3.11/site-packages/httpx/__init__.py",
    ".venv-azure-worker/bin/python",
    ".venv-sam/bin/sam",
    ".venv-checkov/bin/checkov",
    ".venv-fuzz/bin/schemathesis",
    "node_modules/azurite/package.json",
    "out/demo/results.jsonl",
    "data/imggo-fn.db",
    "build/aws.zip",
    "dist/imggo_functions-0.1.0.tar.gz",
    "__pycache__/function_app.cpython-311.pyc",
    "core/__pycache__/config.cpython-311.pyc",
    "core/adapters/azure/__pycache__/table_store.cpython-311.pyc",
    "handlers_azure/__pycache__/app.cpython-311.pyc",
    ".mypy_cache/3.11/core/config.data.json",
    ".ruff_cache/CACHEDIR.TAG",
    ".pytest_cache/README.md",
    ".hypothesis/examples/0a/1b",
    "imggo_functions.egg-info/PKG-INFO",
    ".aws-sam/build/template.yaml",
    ".serverless/cloudformation-template-update-stack.json",
    "local.settings.json",
)


def repository_files() -> list[str]:
    done = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    # A file deleted in the work tree but not yet in the index is not there to upload.
    return sorted(p for p in done.stdout.splitlines() if (ROOT / p).exists())


def candidates() -> list[str]:
    return sorted({*repository_files(), *LOCAL_STATE})


def accepted_by_funcignore(paths: list[str], rules: str) -> set[str]:
    """The paths the parser Core Tools ports accepts under `rules`."""
    node = shutil.which("node")
    if node is None or not PARSER.is_file():
        raise RuntimeError(
            "node and node_modules/gitignore-parser are needed to read .funcignore as "
            "Core Tools does: run `npm ci` (`make test` does)"
        )
    script = (
        "const fs = require('fs');"
        f"const parser = require({json.dumps(str(PARSER))}).compile(process.argv[1]);"
        "const paths = JSON.parse(fs.readFileSync(0, 'utf8'));"
        "process.stdout.write(JSON.stringify(paths.filter(p => parser.accepts(p))));"
    )
    done = subprocess.run(
        [node, "-e", script, rules],
        input=json.dumps(paths),
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return set(json.loads(done.stdout))


def always_left_out(path: str) -> bool:
    parts = PurePosixPath(path).parts
    return bool(ALWAYS_LEFT_OUT_DIRS & set(parts[:-1])) or parts[-1] in ALWAYS_LEFT_OUT_FILES


def uploaded(paths: list[str] | None = None) -> set[str]:
    """The paths (of `paths`, by default candidates()) the publish would upload."""
    paths = candidates() if paths is None else paths
    kept = [p for p in paths if not always_left_out(p)]
    return accepted_by_funcignore(kept, FUNCIGNORE.read_text())


def stage(destination: Path) -> Path:
    """A copy of the upload's files from this checkout in `destination`: the directory
    the platform would run the app from."""
    for path in sorted(uploaded(repository_files())):
        target = destination / path
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / path, target)
    return destination
