"""mkdocs hook: the course's chapters live in tutorials/ (one source for scripts, notebooks and the
site); add them to the site's files so mkdocs-jupyter renders (and runs) them."""
from pathlib import Path

from mkdocs.plugins import event_priority
from mkdocs.structure.files import File


@event_priority(100)      # before mkdocs-jupyter's on_files, which turns them into notebook pages
def on_files(files, config):
    root = Path(config["config_file_path"]).parent
    for chapter in sorted((root / "tutorials").glob("[0-9][0-9]_*.py")):
        files.append(File(f"tutorials/{chapter.name}", str(root), config["site_dir"], config["use_directory_urls"]))
    return files
