"""The event classification (事件分类): ``data/event_classes.csv`` into the database, and read back.

The file is the source of truth: :func:`sync` makes the tables say what it says. A subclass dropped from
the file stays in the table, out of service, because old incidents still name it.
"""
import csv
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from gis.errors import BadInput
from gis.settings import PROJECT_ROOT

CLASSES_CSV = PROJECT_ROOT / "data" / "event_classes.csv"
COLUMNS = ("code", "class_code", "class_name_zh", "class_name_en", "name_zh", "name_en", "time_limit_hours",
           "time_basis", "emergency", "department_code", "department_name_zh", "department_name_en",
           "description_zh")


@dataclass(frozen=True)
class Subclass:
    code: str
    class_code: str
    class_name_zh: str
    class_name_en: str
    name_zh: str
    name_en: str
    time_limit_hours: Decimal
    time_basis: str
    emergency: bool
    department_code: str
    department_name_zh: str
    department_name_en: str
    description_zh: str


def read_csv(path=CLASSES_CSV):
    """The file's subclasses, checked row by row; a bad row is a :class:`BadInput` naming its line."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = set(COLUMNS) - set(reader.fieldnames or ())
        if missing:
            raise BadInput(f"{path}: missing column(s) {', '.join(sorted(missing))}")
        rows = [_subclass(row, path, reader.line_num) for row in reader]
    codes = [r.code for r in rows]
    if len(set(codes)) != len(codes):
        raise BadInput(f"{path}: subclass codes repeat")
    return rows


def _subclass(row, path, line):
    def bad(what):
        return BadInput(f"{path} line {line}: {what}")

    values = {k: (row.get(k) or "").strip() for k in COLUMNS}
    if not (len(values["code"]) == 4 and values["code"].isdigit() and values["code"][:2] == values["class_code"]):
        raise bad(f"code {values['code']!r} must be 4 digits starting with its class code")
    try:
        values["time_limit_hours"] = Decimal(values["time_limit_hours"])
    except InvalidOperation:
        raise bad(f"time_limit_hours {values['time_limit_hours']!r} is not a number") from None
    if not values["time_limit_hours"] > 0:
        raise bad("time_limit_hours must be positive")
    if values["time_basis"] not in ("working", "calendar"):
        raise bad("time_basis must be working or calendar")
    if values["emergency"] not in ("true", "false"):
        raise bad("emergency must be true or false")
    values["emergency"] = values["emergency"] == "true"
    return Subclass(**values)


def sync(db, path=CLASSES_CSV):
    """Make the classification tables match the file; return the number of subclasses in service."""
    rows = read_csv(path)
    with db.cursor() as cur:
        cur.executemany(
            "insert into department (code, name_zh, name_en) values (%s, %s, %s)"
            " on conflict (code) do update set name_zh = excluded.name_zh, name_en = excluded.name_en",
            sorted({(r.department_code, r.department_name_zh, r.department_name_en) for r in rows}))
        cur.executemany(
            "insert into event_class (code, name_zh, name_en) values (%s, %s, %s)"
            " on conflict (code) do update set name_zh = excluded.name_zh, name_en = excluded.name_en",
            sorted({(r.class_code, r.class_name_zh, r.class_name_en) for r in rows}))
        cur.executemany(
            "insert into event_subclass (code, class_code, name_zh, name_en, description_zh, time_limit_hours,"
            " time_basis, emergency, department_code, in_service) values (%s, %s, %s, %s, %s, %s, %s, %s, %s, true)"
            " on conflict (code) do update set class_code = excluded.class_code, name_zh = excluded.name_zh,"
            " name_en = excluded.name_en, description_zh = excluded.description_zh,"
            " time_limit_hours = excluded.time_limit_hours, time_basis = excluded.time_basis,"
            " emergency = excluded.emergency, department_code = excluded.department_code, in_service = true",
            [(r.code, r.class_code, r.name_zh, r.name_en, r.description_zh, r.time_limit_hours, r.time_basis,
              r.emergency, r.department_code) for r in rows])
        cur.execute("update event_subclass set in_service = false where not (code = any (%s))",
                    ([r.code for r in rows],))
    return len(rows)


def in_service(cur, code):
    """Whether ``code`` is a subclass reports may be filed under."""
    cur.execute("select 1 from event_subclass where code = %s and in_service", (code,))
    return cur.fetchone() is not None


def services(cur, *, in_service_only=True):
    """Every subclass with its class and department, in code order."""
    cur.execute(
        "select s.code, s.name_zh, s.name_en, s.description_zh, s.time_limit_hours, s.time_basis, s.emergency,"
        "       s.in_service, c.code as class_code, c.name_zh as class_name_zh, c.name_en as class_name_en,"
        "       d.code as department_code, d.name_zh as department_name_zh, d.name_en as department_name_en"
        "  from event_subclass s join event_class c on c.code = s.class_code"
        "  join department d on d.code = s.department_code"
        + (" where s.in_service" if in_service_only else "") +
        " order by s.code")
    return cur.fetchall()
