"""CAP 1.2 <resource>: a file that goes with the warning (audio bulletin, map, PDF)."""

from typing import Annotated

from pydantic import Field, StringConstraints

from switchboard.core.fields import Name, ShortText

from .values import CapModel, Uri


class Resource(CapModel):
    resourceDesc: Name
    mimeType: ShortText
    size: Annotated[int, Field(ge=0)] | None = None  # bytes
    uri: Uri | None = None
    derefUri: str | None = None  # base64 content, for links that cannot reach a URI
    digest: Annotated[str, StringConstraints(pattern=r"^[0-9a-fA-F]{40}$")] | None = None  # SHA-1, as CAP says
