"""The console's translations: complete, shipped compiled, and every error code explained."""

from __future__ import annotations

from io import BytesIO
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po

import imserver.console
from imserver.console import i18n, meanings
from imserver.domain.errors import Code

PACKAGE = Path(imserver.console.__file__).parent
CATALOG = PACKAGE / "locale" / "zh_CN" / "LC_MESSAGES"


def source_messages() -> set[str]:
    """Every message id in the console's code and templates, as `pybabel extract` finds them."""
    method_map = [("**/templates/**.html", "jinja2"), ("**.py", "python")]
    options = {"**/templates/**.html": {"extensions": "jinja2.ext.i18n"}}
    found = extract_from_dir(
        str(PACKAGE), method_map=method_map, options_map=options, keywords={"_": None, "gettext": None, "N_": None}
    )
    return {message for _, _, message, _, _ in found if isinstance(message, str)}


def test_every_string_has_a_chinese_translation():
    po = read_po((CATALOG / "messages.po").open("rb"))
    translated = {m.id: m.string for m in po if m.id}
    missing = sorted(m for m in source_messages() if not translated.get(m))
    assert not missing, f"untranslated (run the pybabel commands in docs/console.md): {missing}"
    fuzzy = sorted(m.id for m in po if m.id and m.fuzzy)
    assert not fuzzy, fuzzy
    # Babel's checks: every %(name)s of the English text, and no other, in its translation.
    problems = [(m.id, [str(e) for e in errors]) for m, errors in po.check()]
    assert not problems, problems


def test_the_shipped_mo_is_compiled_from_the_po():
    po = read_po((CATALOG / "messages.po").open("rb"))
    mo = read_mo((CATALOG / "messages.mo").open("rb"))
    assert {m.id: m.string for m in mo if m.id} == {m.id: m.string for m in po if m.id}
    out = BytesIO()
    write_mo(out, po)  # the .po compiles cleanly
    assert out.getvalue()


def test_the_runtime_loads_the_catalog():
    zh = i18n.translations("zh_CN")
    assert zh.gettext("Dashboard") == "总览"
    assert i18n.translations("en").gettext("Dashboard") == "Dashboard"


def test_every_error_code_has_a_meaning():
    assert set(Code) <= set(meanings.MEANINGS), sorted(set(Code) - set(meanings.MEANINGS))


def test_language_negotiation():
    assert i18n.negotiate("zh-CN,zh;q=0.9,en;q=0.8", None) == "zh_CN"
    assert i18n.negotiate("en-GB,en;q=0.9", None) == "en"
    assert i18n.negotiate("fr-FR, zh-TW;q=0.5", None) == "zh_CN"
    assert i18n.negotiate("de, en;q=0.1, zh;q=0.4", None) == "zh_CN"
    assert i18n.negotiate("zh;q=0", None) == "en"  # q=0 means "not this one"
    assert i18n.negotiate("zh-CN", "en") == "en"  # the switch wins over the header
    assert i18n.negotiate(None, "xx") == "en"
    assert i18n.negotiate("q=;;,,;q=abc", None) == "en"

