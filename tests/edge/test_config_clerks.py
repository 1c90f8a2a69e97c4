"""The `clerks:` section and `counters[].clerks`: defaults, a code from the environment, and every mistake
named by file:line."""

from __future__ import annotations

from pathlib import Path

from civiq.edge.config import load_config
from tests.edge.test_config import BASE, NO_ENV, errors_of, only, pos, write

CLERKS = """clerks:
  lan: {name: "Nguyễn Thị Lan", code: "4821"}
  minh: {name: "Trần Văn Minh"}
"""


def test_absent_means_nobody_and_a_code_can_come_from_the_environment(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, BASE), NO_ENV)
    assert cfg.clerks == {} and all(c.clerks is None for c in cfg.counters)
    text = BASE.replace("    profile: {services: [A, B]}\n", "    profile: {services: [A, B]}\n    clerks: [lan]\n")
    cfg = load_config(write(tmp_path, text + CLERKS), {"CIVIQ_CLERKS__MINH__CODE": "0093"})
    assert cfg.clerks["lan"].code == "4821" and cfg.clerks["minh"].code == "0093"  # leading zero kept
    assert cfg.clerks["lan"].display_name() == "LAN" and cfg.counters[0].clerks == ["lan"]
    assert cfg.counters[1].clerks is None


def test_clerk_mistakes_point_at_their_line(tmp_path: Path) -> None:
    text = (BASE.replace("    profile: {services: [A, B]}\n", "    profile: {services: [A, B]}\n    clerks: [lan, hoa]\n")
            + """clerks:
  lan: {name: "Nguyễn Thị Lan", code: "4821"}
  minh: {name: "Trần Văn Minh", code: "4821"}
  Tuan: {name: "Tuấn"}
  tu: {name: "Tú", code: 123}
  vy: {name: "Vy", code: "12a4"}
  an: {name: "An", code: "123456789"}
  bao: {name: "", nickname: "B"}
""")
    path = write(tmp_path, text)
    problems = errors_of(path)
    hoa = only(problems, "counters[0].clerks[1]")
    assert "clerk 'hoa' is not defined" in hoa.message and hoa.line == pos(text, "hoa]")[0]
    same = only(problems, "clerks.minh.code")
    assert "same sign-in code as clerk lan" in same.message and same.line == pos(text, "minh:")[0]
    assert "not a valid id" in only(problems, "clerks.Tuan").message
    quoted = only(problems, "clerks.tu.code")
    assert 'write the code in quotes (code: "123")' in quoted.message and quoted.line == pos(text, "tu:")[0]
    assert "4 to 8 digits" in only(problems, "clerks.vy.code").message
    assert "4 to 8 digits" in only(problems, "clerks.an.code").message
    assert only(problems, "clerks.bao.nickname").line == pos(text, "bao:")[0]
    assert all("4821" not in p.message for p in problems)  # a code is never repeated in an error
