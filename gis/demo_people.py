"""Synthetic people of the demo: populations, special grids and the staff on every post.

Nothing here is real. Names are drawn from common surnames and given-name
characters, mobile numbers from real prefixes with random digits (they may
belong to somebody: never dial them), populations from distributions chosen so
that the city adds up to roughly Zhengzhou's 12–13 million.
"""
from __future__ import annotations

import numpy as np

# Common surnames, roughly by frequency (Henan's big four first); drawn with falling weights.
SURNAMES = list(
    "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕苏卢蒋蔡贾丁魏"
    "薛叶阎余潘杜戴夏钟汪田任姜范方石姚谭廖邹熊金陆郝孔白崔康毛邱秦江史顾侯邵孟龙万段雷钱汤尹黎易常"
    "武乔贺赖龚文牛申岳司闫耿翟"
)
GIVEN_CHARS = list(
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红建国志文辉鹏飞慧丹宇浩凯鑫晨欣雪琳"
    "佳怡子涵梓轩博宏俊海峰亮成斌波宁瑞雅婷倩琪颖晓春梅燕玲凤兴福永旭东阳帅嘉"
)
MOBILE_PREFIXES = ("130", "131", "132", "133", "134", "135", "136", "137", "138", "139", "150", "151",
                   "152", "153", "155", "156", "157", "158", "159", "166", "176", "177", "178", "180",
                   "181", "182", "183", "184", "185", "186", "187", "188", "189", "191", "198", "199")
# Large units that get a special grid (专属网格) of their own.
URBAN_FACILITIES = ("小学", "中学", "医院", "公园", "商业广场", "产业园", "批发市场", "体育中心", "职业学院")
RURAL_FACILITIES = ("水库", "林场", "工业园", "养殖场", "物流园", "中学", "农业园区")
SPECIAL_SHARE = 0.025
# Posts as the grid store names them (sql/002_grid_store.sql, table post).
POST_STREET = "街道/乡镇负责人"
POST_SECRETARY = "社区/村党组织书记"
POST_DIRECTOR = "社区/村委会主任"
POST_GRID_HEAD = "网格长"
POST_GRID_WORKER = "网格员"

_SURNAME_WEIGHTS = 1.0 / (np.arange(len(SURNAMES)) + 8.0)
_SURNAME_WEIGHTS /= _SURNAME_WEIGHTS.sum()


def person_names(rng: np.random.Generator, n: int) -> list[str]:
    """``n`` plausible Chinese names: a surname and one or two given-name characters."""
    surnames = rng.choice(len(SURNAMES), size=n, p=_SURNAME_WEIGHTS)
    two = rng.uniform(size=n) < 0.7
    given = rng.integers(0, len(GIVEN_CHARS), size=(n, 2))
    return [SURNAMES[s] + GIVEN_CHARS[g[0]] + (GIVEN_CHARS[g[1]] if t else "")
            for s, t, g in zip(surnames, two, given)]


def mobile_numbers(rng: np.random.Generator, n: int) -> list[str]:
    """``n`` distinct 11-digit mobile numbers: a real carrier prefix and eight random digits."""
    numbers = _draw_numbers(rng, n)
    # Nobody shares a number: redraw the later of any two equal ones.
    while True:
        _, first = np.unique(numbers, return_index=True)
        dup = np.setdiff1d(np.arange(n), first)
        if not dup.size:
            return [str(v) for v in numbers]
        numbers[dup] = _draw_numbers(rng, dup.size)


def _draw_numbers(rng, n):
    prefixes = np.array([int(p) for p in MOBILE_PREFIXES], dtype=np.int64)
    return prefixes[rng.integers(0, len(prefixes), size=n)] * 100_000_000 + rng.integers(0, 100_000_000, size=n)


def pick_special(rng: np.random.Generator, grid_parent: np.ndarray, urban: np.ndarray,
                 community_names: list[str]) -> dict[int, str]:
    """Choose ~2.5 % of the unit grids as special grids and name their facility.

    Only communities with three grids or more give one away, and a community never
    gets the same facility twice.

    Parameters
    ----------
    grid_parent : ndarray of int
        Community index of each unit grid.
    urban : ndarray of bool
        Whether each unit grid lies in a 社区 (else a village).
    community_names : list of str

    Returns
    -------
    dict
        Unit grid index -> its name, e.g. ``"碧沙岗小学专属网格"``.
    """
    per_community = np.bincount(grid_parent, minlength=len(community_names))
    candidates = np.flatnonzero(per_community[grid_parent] >= 3)
    count = min(int(round(SPECIAL_SHARE * len(grid_parent))), len(candidates))
    chosen = np.sort(rng.choice(candidates, size=count, replace=False))
    used: dict[int, set] = {}
    names = {}
    for g in chosen:
        c = int(grid_parent[g])
        pool = [f for f in (URBAN_FACILITIES if urban[g] else RURAL_FACILITIES) if f not in used.get(c, set())]
        facility = pool[int(rng.integers(len(pool)))]
        used.setdefault(c, set()).add(facility)
        stem = community_names[c].removesuffix("社区").removesuffix("村")
        names[int(g)] = f"{stem}{facility}专属网格"
    return names


def grid_populations(rng: np.random.Generator, area_m2: np.ndarray, urban: np.ndarray,
                     special: np.ndarray) -> np.ndarray:
    """Residents of each unit grid.

    Urban grids: log-normal around 600 people for 50,000 m², growing slowly with
    area, kept within 200–3,000. Village grids (a 村民小组): around 210, within
    80–500. Special grids (a school, a park…) house few: 0–150.

    Returns
    -------
    ndarray of int64
    """
    n = len(area_m2)
    noise = rng.normal(size=n)
    city = np.clip(np.exp(np.log(600.0) + 0.3 * np.log(area_m2 / 50_000.0) + 0.45 * noise), 200, 3000)
    village = np.clip(np.exp(np.log(210.0) + 0.25 * noise), 80, 500)
    residents = rng.integers(0, 151, size=n)
    pop = np.where(special, residents, np.where(urban, city, village))
    return np.round(pop).astype(np.int64)


def staff_rows(rng: np.random.Generator, streets, communities, grids) -> list[tuple[str, str, str, str]]:
    """Everybody on a post, as ``(cell_code, post, name, phone)`` rows.

    A street unit has its head; a community or village its party secretary and its
    director; a unit grid its grid head and one to three grid workers.

    Parameters
    ----------
    streets, communities, grids : list of str
        Cell codes, in the order the rows should come.
    """
    posts = [(c, POST_STREET) for c in streets]
    for c in communities:
        posts += [(c, POST_SECRETARY), (c, POST_DIRECTOR)]
    workers = rng.integers(1, 4, size=len(grids))
    for c, w in zip(grids, workers):
        posts.append((c, POST_GRID_HEAD))
        posts += [(c, POST_GRID_WORKER)] * int(w)
    names = person_names(rng, len(posts))
    phones = mobile_numbers(rng, len(posts))
    return [(c, p, name, phone) for (c, p), name, phone in zip(posts, names, phones)]


def make_phones_unique(rows, rng: np.random.Generator) -> list[tuple[str, str, str, str]]:
    """Give a fresh number to every row whose phone an earlier row already has.

    Each district draws its staff from its own stream, so two districts can (rarely) draw the same number.
    """
    seen = {r[3] for r in rows}
    first = set()
    out = []
    for cell, post, name, phone in rows:
        if phone in first:
            phone = next(p for p in iter(lambda: mobile_numbers(rng, 1)[0], None) if p not in seen)
            seen.add(phone)
        first.add(phone)
        out.append((cell, post, name, phone))
    return out

