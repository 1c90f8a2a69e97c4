"""The `priority:` section, priority buttons and issue keys: defaults, and every mistake named by file:line."""

from __future__ import annotations

from pathlib import Path

from civiq.edge.config import load_config
from tests.edge.test_config import BASE, NO_ENV, errors_of, only, pos, write


def test_absent_means_no_classes_and_an_empty_section_the_four_standard_ones(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, BASE), NO_ENV)
    assert cfg.priority.classes == [] and cfg.priority.enabled() == {} and cfg.queue.recall_cooldown_s == 0
    cfg = load_config(write(tmp_path, BASE + "priority: {max_in_row: 2}\n"), NO_ENV)
    assert [c.id for c in cfg.priority.classes] == ["elderly", "disabled", "pregnant", "merit"]
    assert cfg.priority.label("pregnant") == "ƯU TIÊN · Phụ nữ mang thai" and cfg.priority.label(None) is None
    text = BASE + """priority:
  rule: boost
  boost_minutes: 20
  classes:
    - {id: elderly, name_vi: "Người từ 75 tuổi", name_en: "Aged 75+"}
    - {id: merit, name_vi: "Người có công", name_en: "Merit", enabled: false}
"""
    cfg = load_config(write(tmp_path, text), NO_ENV)
    assert list(cfg.priority.enabled()) == ["elderly"] and cfg.priority.rule == "boost"


def test_priority_mistakes_point_at_their_line(tmp_path: Path) -> None:
    text = (BASE.replace("dispenser: {buttons: {A: 17, B: 27, C: 22}, printer: p1}",
                         "dispenser: {buttons: {A: 17, B: 27, C: 22}, printer: p1, priority_buttons: {eldery: 24, "
                         "disabled: 17}}")
            .replace("  - {id: k1, counter: c2, kind: gpio, pins: {next: 5, recall: 6}}",
                     "  - {id: k1, counter: c2, kind: gpio, pins: {next: 5, recall: 6},\n"
                     "     issue: [{pin: 20, service: Z, priority: vip}]}")
            + "priority:\n  rule: fastest\n  classes:\n    - {id: elderly, name_vi: A, name_en: A}\n"
              "    - {id: disabled, name_vi: B, name_en: B}\n")
    path = write(tmp_path, text)
    problems = errors_of(path)
    rule = only(problems, "priority.rule")
    assert (rule.line, rule.column) == pos(text, "fastest") and "first" in rule.message
    # once the rule is right, the cross-checks speak
    text = text.replace("rule: fastest", "rule: first")
    problems = errors_of(write(tmp_path, text))
    p = only(problems, "dispenser.priority_buttons.eldery")
    assert "priority class 'eldery' is not defined" in p.message and "elderly" in p.message
    assert p.line == pos(text, "eldery")[0]
    assert "GPIO17 is already used by dispenser button A" in only(problems, "dispenser.priority_buttons.disabled").message
    assert "service 'Z' is not defined" in only(problems, "keypads[0].issue[0].service").message
    vip = only(problems, "keypads[0].issue[0].priority")
    assert "priority class 'vip'" in vip.message and vip.line == pos(text, "vip")[0]
