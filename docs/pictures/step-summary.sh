#!/usr/bin/env bash
# Makes docs/pictures/step-summary.png, the README's picture of the GitHub step summary, from the real commands:
#   docs/pictures/step-summary.sh
# needs the checkout's .venv (tests/run makes it) and PostgreSQL on 127.0.0.1:5432 (tests/run starts it); installs
# pandoc, Chromium, Pillow and an emoji font from Debian when missing.
# A pull request adds revision 0004 to the example revisions: an index built without CONCURRENTLY and a NOT NULL
# column on an existing table. The workflow's `lint` job lints it (MIGRATE_LINT_SINCE=0003); its `migrate` job
# upgrades a fresh database and checks it. Each command runs as under GitHub Actions (GITHUB_ACTIONS=true, its job's
# GITHUB_STEP_SUMMARY), the summaries are rendered as GitHub-flavoured Markdown (pandoc) in a page styled like a
# workflow run's summary, and headless Chromium takes the picture.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD
out=docs/pictures/step-summary.png

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
missing=()
command -v pandoc >/dev/null || missing+=(pandoc)
command -v chromium >/dev/null || missing+=(chromium)
/usr/bin/python3 -c 'import PIL' 2>/dev/null || missing+=(python3-pil)
[ -e /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf ] || missing+=(fonts-noto-color-emoji)
if [ "${#missing[@]}" -gt 0 ]; then
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

work=$(mktemp -d)
db=step_summary_$$
cleanup() {
    psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
psql -q -h 127.0.0.1 -U postgres -d postgres -c "CREATE DATABASE $db"

workspace=$work/workspace
mkdir -p "$workspace/migrations/versions"
cp image/examples/versions/*.py "$workspace/migrations/versions/"
cp tests/container/data/0004_order_status.py "$workspace/migrations/versions/"  # the tests' risky revision

# step JOB COMMAND [VAR=VALUE...]: one step of a job, its summary appended to the job's, its exit code ignored (a
# failing step is part of the picture).
step() {
    local job=$1 command=$2
    shift 2
    (cd "$workspace" && env GITHUB_ACTIONS=true GITHUB_WORKSPACE="$workspace" GITHUB_STEP_SUMMARY="$work/$job.md" \
        GITHUB_OUTPUT="$work/$job.outputs" DATABASE_URL="postgresql://postgres@127.0.0.1:5432/$db" \
        MIGRATE_VERSIONS_DIR=migrations/versions "$@" "$repo/.venv/bin/alembic-sidecar" "$command") \
        >/dev/null 2>&1 || true
}
step lint lint MIGRATE_LINT_SINCE=0003
step migrate upgrade
step migrate check

{
    cat <<'EOF'
<!doctype html><html><head><meta charset="utf-8"><style>
body { margin: 0; padding: 24px; width: 1300px; background: #f6f8fa; color: #1f2328;
       font: 14px/1.5 -apple-system, "Segoe UI", "Noto Sans", Helvetica, Arial, sans-serif, "Noto Color Emoji"; }
.job { background: #fff; border: 1px solid #d0d7de; border-radius: 6px; margin-bottom: 16px; }
.job > h2 { margin: 0; padding: 12px 16px; font-size: 14px; font-weight: 600; border-bottom: 1px solid #d0d7de; }
.body { padding: 8px 24px 16px; }
h3 { font-size: 20px; margin: 16px 0 8px; } h4 { font-size: 16px; margin: 16px 0 8px; }
table { border-collapse: collapse; margin: 8px 0 16px; display: block; overflow: auto; }
th, td { border: 1px solid #d0d7de; padding: 6px 13px; } th { font-weight: 600; }
tr:nth-child(2n) { background: #f6f8fa; }
code { font: 85% ui-monospace, SFMono-Regular, "DejaVu Sans Mono", monospace; padding: .2em .4em;
       background: rgba(175, 184, 193, .2); border-radius: 6px; }
</style></head><body>
EOF
    for job in lint migrate; do
        [ -s "$work/$job.md" ] || { echo "step-summary.sh: the $job job wrote no summary" >&2; exit 1; }
        printf '<div class="job"><h2>%s summary</h2><div class="body">\n' "$job"
        pandoc -f gfm -t html "$work/$job.md"
        printf '</div></div>\n'
    done
    printf '</body></html>\n'
} >"$work/summary.html"

chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --force-device-scale-factor=1 \
    --window-size=1348,4000 --screenshot="$work/page.png" "file://$work/summary.html" >/dev/null 2>&1
# The page is shorter than the window: cut the picture below the last job's box.
/usr/bin/python3 - "$work/page.png" "$out" <<'EOF'
import sys
from PIL import Image, ImageChops
page = Image.open(sys.argv[1]).convert("RGB")
background = Image.new("RGB", page.size, page.getpixel((0, page.height - 1)))
box = ImageChops.difference(page, background).getbbox()
page.crop((0, 0, page.width, box[3] + 24)).save(sys.argv[2], optimize=True)
EOF
echo "wrote $out"
