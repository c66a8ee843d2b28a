"""Screenshots of the console's screens, kept as test artefacts in test-artifacts/screenshots/ (not in pytest's
temporary directories, which are pruned): a reviewer, or CI, looks at them after the run."""

from pathlib import Path

from playwright.async_api import Page

FOLDER = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"


async def screenshot(page: Page, name: str) -> Path:
    """Save the whole page as <name>.png (a later run overwrites it)."""
    FOLDER.mkdir(parents=True, exist_ok=True)
    path = FOLDER / f"{name}.png"
    await page.screenshot(path=path, full_page=True)
    return path
