"""What the simulated stores sell: categories, brands, product lines and how stores word them.

Everything here is plain data. A *tier* is a product line of one brand (Samsung Crystal UHD,
iPhone, JBL Flip...). Its ``name`` and ``code`` are templates over a few fields:

* ``{size}`` and the variant attributes (``{cm}``, ``{ram_txt}``, ``{ssd}``, ``{s10}``...) come
  from the category's variant axis (screen sizes, storage, litres, kilos);
* ``{gen}``/``{gc}`` is the generation (label / code letter), ``{ser}``/``{SER}`` and ``{num}``
  identify the series within the line, and ``{part}`` is a per-product part number;
* tier attributes (``{panel}``, ``{type}``, ``{cpu}``...) describe the whole line.

A tier's name and code are injective in (series, generation) and, with the size, identify
one true product; siblings of a line that differ only by size, capacity or generation are the
hard negatives a matcher has to tell apart.

Prices are list ("normal") prices in CLP of the tier at the axis variant whose multiplier is
1.0 (55" TVs, 128 GB phones, 8 GB / 512 GB notebooks, 310 L fridges, 13 kg washers, 25 L
microwaves), at the levels Chilean stores showed in 2024-2025.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

ALNUM = "0123456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # part-number alphabet (no I / O)
DIGITS = "0123456789"
LETTERS = "ABCDEFGHJKLMNPRSTUVWXYZ"


@dataclass(frozen=True)
class Variant:
    """One point of a category's variant axis (a screen size, a storage capacity...)."""

    size: str  # the value stores print next to the unit: "55", "128", "310"
    price: float  # price multiplier relative to the category's reference variant
    label: str  # how the variant is named on a product page: '55"', "128GB", "310 L"
    attrs: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Tier:
    """A product line of one brand; see the module docstring for the template fields."""

    name: str
    code: str
    price: int
    gens: tuple[str, ...] = ("",)
    gen_codes: tuple[str, ...] | None = None
    sers: tuple[str, ...] = ("",)
    ser_price: tuple[float, ...] | None = None
    num: tuple[int, int] = (1, 1)  # {num} = start + step * series
    num_width: int = 0
    lines: int = 0  # natural number of series in the line (0: len(sers), at least 3)
    step: float = 0.08  # price step per series when ser_price is not given
    suffix: tuple[str, ...] = ("",)  # region / colour suffixes of the full part number
    part: str = ""  # alphabet of {part}
    part_len: int = 4
    sizes: tuple[int, int] | None = None  # slice of the variant axis this line comes in
    attrs: Mapping[str, str] = field(default_factory=dict)
    weight: float = 1.0

    @property
    def n_series(self) -> int:
        return self.lines or (len(self.sers) if len(self.sers) > 1 else 3)


@dataclass(frozen=True)
class Brand:
    name: str
    weight: float
    ean_prefix: str  # GS1 country prefix of the brand's barcodes
    tiers: tuple[Tier, ...]


@dataclass(frozen=True)
class Category:
    key: str
    weight: float
    axis: tuple[Variant, ...]
    colors: tuple[str, ...]
    brands: tuple[Brand, ...]
    paths: Mapping[str, str]  # retailer -> category path in the store's own words
    titles: Mapping[str, tuple[str, ...]]  # retailer -> title templates
    grouped: bool = False  # stores group sibling capacities under one product page


def _single() -> tuple[Variant, ...]:
    return (Variant(size="", price=1.0, label=""),)


# fmt: off
# --- variant axes -----------------------------------------------------------------------

_TV_SIZES = (32, 40, 43, 50, 55, 58, 65, 70, 75, 85)
_TV_PRICE = (0.42, 0.55, 0.63, 0.82, 1.0, 1.1, 1.45, 1.8, 2.3, 3.6)
TV_AXIS = tuple(
    Variant(
        size=str(s),
        price=p,
        label=f'{s}"',
        attrs={
            "cm": str(int(s * 2.54)),
            "res": "HD" if s < 40 else "Full HD" if s < 43 else "4K UHD",
        },
    )
    for s, p in zip(_TV_SIZES, _TV_PRICE, strict=True)
)
PHONE_AXIS = tuple(
    Variant(size=str(s), price=p, label=f"{s}GB", attrs={"ram_txt": f"{r}GB RAM"})
    for s, p, r in ((64, 0.8, 4), (128, 1.0, 6), (256, 1.25, 8), (512, 1.6, 12))
)
NOTEBOOK_AXIS = tuple(
    Variant(size=f"{r}/{d}", price=p, label=f"{r}GB RAM / {d} SSD", attrs={"ram": str(r), "ssd": d})
    for r, d, p in (
        (8, "256GB", 0.88),
        (8, "512GB", 1.0),
        (16, "512GB", 1.18),
        (16, "1TB", 1.38),
        (32, "1TB", 1.8),
    )
)
_FRIDGE_L = (180, 230, 250, 280, 310, 340, 380, 420, 460, 520, 580, 620)
_FRIDGE_PRICE = (0.55, 0.68, 0.74, 0.86, 1.0, 1.12, 1.25, 1.42, 1.6, 1.9, 2.3, 2.6)
FRIDGE_AXIS = tuple(
    Variant(size=str(s), price=p, label=f"{s} L", attrs={"s10": str(s // 10)})
    for s, p in zip(_FRIDGE_L, _FRIDGE_PRICE, strict=True)
)
_WASHER_KG = (7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 22)
_WASHER_PRICE = (
    0.62,
    0.68,
    0.74,
    0.8,
    0.87,
    0.93,
    1.0,
    1.07,
    1.14,
    1.22,
    1.3,
    1.38,
    1.46,
    1.55,
    1.75,
)
WASHER_AXIS = tuple(
    Variant(size=str(s), price=p, label=f"{s} kg")
    for s, p in zip(_WASHER_KG, _WASHER_PRICE, strict=True)
)
TABLET_AXIS = tuple(
    Variant(size=str(s), price=p, label=f"{s}GB")
    for s, p in ((64, 0.87), (128, 1.0), (256, 1.25), (512, 1.6))
)
_MICRO_L = (17, 20, 23, 25, 28, 30, 32, 42)
_MICRO_PRICE = (0.6, 0.72, 0.85, 1.0, 1.12, 1.25, 1.4, 2.1)
MICRO_AXIS = tuple(
    Variant(size=str(s), price=p, label=f"{s} L")
    for s, p in zip(_MICRO_L, _MICRO_PRICE, strict=True)
)

# --- categories ---------------------------------------------------------------------------

TELEVISORES = Category(
    key="televisores",
    weight=0.18,
    axis=TV_AXIS,
    colors=("Negro",),
    paths={
        "falabella": "Tecnología > TV y Video > Televisores",
        "ripley": "Tecno > Televisión > Smart TV",
        "paris": "Electro > Televisión > Televisores LED",
    },
    titles={
        "falabella": (
            '{panel} {size}" {name} {res} Smart TV {code}',
            'Smart TV {brand} {size}" {panel} {res} {code}',
            "Televisor {brand} {panel} {size}'' {name} Smart TV",
        ),
        "ripley": (
            'SMART TV {brand} {panel} {size}" {res} {code}',
            "Televisor {brand} {size} pulgadas {name} {res} Smart TV",
            'TV {brand} {cm} cm ({size}") {panel} {code}',
        ),
        "paris": (
            "Smart TV {brand} {size} Pulgadas {name} {res}",
            "Televisor {panel} {brand} {cm} cm {res} {code}",
            'TV {brand} {size}" {panel} Smart {code}',
        ),
    },
    brands=(
        Brand("Samsung", 25, "880", (
            Tier("Crystal UHD {gen}{num}", "UN{size}{gen}{num}", 379_990,
                 gens=("AU", "BU", "CU", "DU"), num=(7000, 100), lines=4, step=0.05,
                 suffix=("GXZS",), sizes=(2, 10), attrs={"panel": "LED"}, weight=2),
            Tier("QLED Q{num}{gen}", "QN{size}Q{num}{gen}", 549_990, gens=("A", "B", "C", "D"),
                 num=(60, 5), lines=4, suffix=("AGXZS", "GXZS"), sizes=(2, 10),
                 attrs={"panel": "QLED"}),
            Tier("Neo QLED QN{num}{gen}", "QN{size}QN{num}{gen}", 1_099_990, gens=("B", "C", "D"),
                 num=(85, 5), lines=3, suffix=("AGXZS",), sizes=(4, 10),
                 attrs={"panel": "Neo QLED"}, weight=0.4),
        )),
        Brand("LG", 22, "880", (
            Tier("UHD ThinQ AI {gen}{num}", "{size}{gen}{num}", 369_990,
                 gens=("UP", "UQ", "UR", "UT"), num=(8050, 100), lines=4, suffix=("PSB", "PSA"),
                 sizes=(2, 10), attrs={"panel": "LED"}, weight=2),
            Tier("NanoCell NANO{num}{gen}", "{size}NANO{num}{gen}", 429_990,
                 gens=("P", "Q", "R", "S"), num=(75, 5), lines=3, suffix=("SRA", "PSA"),
                 sizes=(2, 9), attrs={"panel": "NanoCell"}),
            Tier("OLED evo {ser}{gen}", "OLED{size}{ser}{gen}", 1_199_990,
                 gens=("1", "2", "3", "4"), sers=("B", "C", "G"), ser_price=(0.85, 1.0, 1.3),
                 suffix=("PSA",), sizes=(4, 10), attrs={"panel": "OLED"}, weight=0.6),
        )),
        Brand("Sony", 10, "454", (
            Tier("Bravia X{num}{gen}", "KD-{size}X{num}{gen}", 499_990, gens=("J", "K", "L"),
                 num=(75, 5), lines=4, sizes=(2, 10), attrs={"panel": "LED"}, weight=2),
            Tier("Bravia XR A{num}{gen}", "XR-{size}A{num}{gen}", 1_499_990, gens=("J", "K", "L"),
                 num=(80, 5), lines=2, sizes=(4, 9), attrs={"panel": "OLED"}),
        )),
        Brand("TCL", 15, "693", (
            Tier("P{num}{gen}", "{size}P{num}{gen}", 299_990, gens=("35", "45", "55"), num=(6, 1),
                 lines=3, sizes=(0, 10), attrs={"panel": "LED"}, weight=2),
            Tier("QLED C{num}{gen}", "{size}C{num}{gen}", 399_990, gens=("35", "45", "55"),
                 num=(6, 1), lines=3, sizes=(2, 10), attrs={"panel": "QLED"}),
        )),
        Brand("Hisense", 12, "690", (
            Tier("A{num}{gen}", "{size}A{num}{gen}", 289_990, gens=("H", "K", "N"), num=(6, 1),
                 lines=3, sizes=(0, 10), attrs={"panel": "LED"}, weight=2),
            Tier("ULED U{num}{gen}", "{size}U{num}{gen}", 549_990, gens=("H", "K", "N"),
                 num=(6, 1), lines=3, sizes=(4, 10), attrs={"panel": "ULED"}),
        )),
        Brand("Xiaomi", 8, "695", (
            Tier("TV {ser}{gen}", "L{size}M{num}-{ser}{gen}LA", 319_990, gens=("2", "3"),
                 sers=("A", "Q", "F"), ser_price=(1.0, 1.3, 0.85), num=(7, 1), sizes=(1, 8),
                 attrs={"panel": "LED"}),
        )),
        Brand("Philips", 8, "871", (
            Tier("Ambilight {num}{gen}", "{size}PUD{num}{gen}", 419_990, gens=("08", "18", "28"),
                 num=(74, 5), lines=3, sizes=(2, 8), attrs={"panel": "LED"}),
        )),
    ),
)

SMARTPHONES = Category(
    key="smartphones",
    weight=0.18,
    axis=PHONE_AXIS,
    colors=("Negro", "Azul", "Verde", "Blanco", "Lila", "Gris", "Plateado", "Dorado", "Celeste"),
    grouped=True,
    paths={
        "falabella": "Tecnología > Telefonía > Celulares y Teléfonos > Smartphones",
        "ripley": "Tecno > Celulares > Smartphones",
        "paris": "Tecnología > Celulares > Smartphones",
    },
    titles={
        "falabella": (
            "Smartphone {name} {size}GB {ram_txt} {color}",
            "Celular {brand} {name} {net} {size}GB {color}",
            "{brand} {name} {size} GB {ram_txt} {net} {code}",
        ),
        "ripley": (
            "CELULAR {brand} {name} {size}GB {color}",
            "Smartphone {brand} {name} {net} {size}GB {ram_txt} {color}",
        ),
        "paris": (
            "{brand} {name} {size}GB {color} Liberado",
            "Celular {name} {net} {ram_txt} {size}GB",
            "Smartphone {brand} {name} {size}GB {ram_txt}",
        ),
    },
    brands=(
        Brand("Samsung", 30, "880", (
            Tier("Galaxy A{num}{gen}", "SM-A{num}{gen}6{gc}", 139_990, gens=("4", "5", "6"),
                 gen_codes=("M", "E", "B"), num=(0, 1), lines=6, step=0.35, sizes=(0, 3),
                 attrs={"net": ""}, weight=2.5),
            Tier("Galaxy S{gen}{ser}", "SM-S9{gc}{num}B", 799_990, gens=("23", "24", "25"),
                 gen_codes=("1", "2", "3"), sers=("", "+", " Ultra", " FE"),
                 ser_price=(1.0, 1.25, 1.6, 0.75), num=(1, 5), sizes=(1, 4), attrs={"net": "5G"}),
            Tier("Galaxy Z {ser}{gen}", "SM-F{num}{gen}B", 1_099_990, gens=("5", "6"),
                 sers=("Flip", "Fold"), ser_price=(1.0, 1.6), num=(73, 21), sizes=(2, 4),
                 attrs={"net": "5G"}, weight=0.3),
        )),
        Brand("Apple", 20, "019", (
            Tier("iPhone {gen}{ser}", "M{part}LZ/A", 799_990, gens=("13", "14", "15", "16"),
                 sers=("", " Plus", " Pro", " Pro Max"), ser_price=(1.0, 1.15, 1.35, 1.55),
                 part=ALNUM, part_len=4, sizes=(1, 4), attrs={"ram_txt": "", "net": "5G"}),
        )),
        Brand("Xiaomi", 20, "695", (
            Tier("Redmi Note {gen}{ser}", "2{part}G", 199_990, gens=("12", "13", "14"),
                 sers=("", " Pro", " Pro+", " 5G"), ser_price=(1.0, 1.35, 1.6, 1.15), part=ALNUM,
                 part_len=8, sizes=(1, 3), attrs={"net": ""}, weight=2),
            Tier("Redmi {gen}{ser}", "2{part}L", 119_990, gens=("12", "13", "14"),
                 sers=("C", "", " 5G"), ser_price=(0.8, 1.0, 1.2), part=ALNUM, part_len=8,
                 sizes=(0, 2), attrs={"net": ""}),
            Tier("Xiaomi {gen}T{ser}", "2{part}G", 599_990, gens=("13", "14"), sers=("", " Pro"),
                 ser_price=(1.0, 1.35), part=ALNUM, part_len=8, sizes=(2, 4), attrs={"net": "5G"},
                 weight=0.5),
        )),
        Brand("Motorola", 15, "840", (
            Tier("moto g{num}{gen}", "XT{part}-1", 129_990, gens=("4", "5"), num=(2, 1), lines=5,
                 step=0.18, part=DIGITS, part_len=4, sizes=(0, 3), attrs={"net": ""}, weight=2),
            Tier("Edge {gen} {ser}", "XT{part}-2", 399_990, gens=("40", "50"),
                 sers=("Neo", "Fusion", "Pro", "Ultra"), ser_price=(0.9, 1.0, 1.4, 1.8),
                 part=DIGITS, part_len=4, sizes=(2, 4), attrs={"net": "5G"}),
            Tier("razr {gen}{ser}", "XT{part}-3", 699_990, gens=("40", "50"), sers=("", " ultra"),
                 ser_price=(1.0, 1.5), part=DIGITS, part_len=4, sizes=(2, 3), attrs={"net": "5G"},
                 weight=0.3),
        )),
        Brand("Huawei", 8, "694", (
            Tier("nova {gen}{ser}", "{part}-LX9", 249_990, gens=("11", "12"),
                 sers=("i", " SE", "", " Pro"), ser_price=(0.8, 0.9, 1.0, 1.5), part=LETTERS,
                 part_len=3, sizes=(1, 3), attrs={"net": ""}),
        )),
    ),
)

NOTEBOOKS = Category(
    key="notebooks",
    weight=0.12,
    axis=NOTEBOOK_AXIS,
    colors=("Gris", "Plateado", "Negro", "Azul"),
    paths={
        "falabella": "Tecnología > Computadores > Notebooks",
        "ripley": "Tecno > Computación > Notebooks",
        "paris": "Tecnología > Computadores > Notebooks",
    },
    titles={
        "falabella": (
            'Notebook {brand} {name} {cpu} {ram}GB RAM {ssd} SSD {screen}"',
            'Notebook {name} {screen}" {cpu} {ram}GB {ssd} {code}',
        ),
        "ripley": (
            'NOTEBOOK {brand} {name} {cpu} {ram}GB {ssd} SSD {screen}" {os}',
            "Notebook {brand} {name} {code} {cpu} {ram}GB RAM {ssd}",
        ),
        "paris": (
            'Notebook {brand} {name} {screen}" {cpu} {ram}GB {ssd}',
            "{brand} {name} {cpu} {ssd} SSD {ram}GB RAM {color}",
        ),
    },
    brands=(
        Brand("Lenovo", 30, "195", (
            Tier("IdeaPad Slim 3 15I{ser}{gen}", "82{part}LM", 549_990, gens=("7", "8", "9"),
                 sers=("AH", "RU", "AN", "RH"), step=0.05, part=ALNUM, part_len=6, sizes=(0, 4),
                 attrs={"cpu": "Intel Core i5", "screen": "15.6", "os": "Windows 11"}, weight=2),
            Tier("IdeaPad Slim 5 14A{ser}{gen}", "83{part}CL", 699_990, gens=("7", "8", "9"),
                 sers=("BR", "HP"), part=ALNUM, part_len=6, sizes=(1, 5),
                 attrs={"cpu": "AMD Ryzen 7", "screen": "14", "os": "Windows 11"}),
            Tier("LOQ 15I{ser}{gen}", "83{part}LM", 849_990, gens=("8", "9"), sers=("RH", "AX"),
                 part=ALNUM, part_len=6, sizes=(1, 5),
                 attrs={"cpu": "Intel Core i5 RTX 3050", "screen": "15.6", "os": "Windows 11"}),
            Tier("Legion 5 16I{ser}{gen}", "82{part}CL", 1_399_990, gens=("8", "9"),
                 sers=("RX", "AX"), part=ALNUM, part_len=6, sizes=(2, 5),
                 attrs={"cpu": "Intel Core i7 RTX 4060", "screen": "16", "os": "Windows 11"},
                 weight=0.4),
        )),
        Brand("HP", 30, "196", (
            Tier("Laptop 15-{ser}{gen}", "15-{ser}{gen}{part}la", 529_990, gens=("0", "1"),
                 sers=("fd", "fc", "dy"), part=DIGITS, part_len=3, sizes=(0, 4),
                 attrs={"cpu": "Intel Core i5", "screen": "15.6", "os": "Windows 11"}, weight=2),
            Tier("Victus 15-{ser}{gen}", "15-{ser}{gen}{part}la", 799_990, gens=("0", "1"),
                 sers=("fa", "fb"), part=DIGITS, part_len=3, sizes=(1, 5),
                 attrs={"cpu": "AMD Ryzen 5 RTX 2050", "screen": "15.6", "os": "Windows 11"}),
            Tier("Pavilion Aero 13-{ser}{gen}", "13-{ser}{gen}{part}la", 799_990, gens=("0", "2"),
                 sers=("be", "bg"), part=DIGITS, part_len=3, sizes=(1, 4),
                 attrs={"cpu": "AMD Ryzen 7", "screen": "13.3", "os": "Windows 11"}, weight=0.5),
        )),
        Brand("Asus", 22, "471", (
            Tier("Vivobook 15 X1504{ser}", "X1504{ser}-{part}W", 499_990, sers=("ZA", "VA", "GA"),
                 part=ALNUM, part_len=5, sizes=(0, 4),
                 attrs={"cpu": "Intel Core i5", "screen": "15.6", "os": "Windows 11"}, weight=2),
            Tier("Vivobook 16 M160{gen}{ser}", "M160{gen}{ser}-{part}W", 549_990, gens=("5", "7"),
                 sers=("YA", "XA"), part=ALNUM, part_len=5, sizes=(0, 4),
                 attrs={"cpu": "AMD Ryzen 5", "screen": "16", "os": "Windows 11"}),
            Tier("TUF Gaming F15 FX50{gen}{ser}", "FX50{gen}{ser}-{part}W", 899_990,
                 gens=("6", "7"), sers=("HF", "VU"), part=ALNUM, part_len=5, sizes=(1, 5),
                 attrs={"cpu": "Intel Core i5 RTX 3050", "screen": "15.6", "os": "Windows 11"}),
        )),
        Brand("Apple", 18, "019", (
            Tier("MacBook Air{ser} M{gen}", "M{part}LE/A", 1_099_990, gens=("1", "2", "3", "4"),
                 sers=(" 13",), lines=1, part=ALNUM, part_len=4, sizes=(0, 4),
                 attrs={"cpu": "Chip Apple", "screen": "13.6", "os": "macOS"}),
            Tier("MacBook Air{ser} M{gen}", "M{part}LE/A", 1_349_990, gens=("2", "3", "4"),
                 sers=(" 15",), lines=1, part=ALNUM, part_len=4, sizes=(1, 4),
                 attrs={"cpu": "Chip Apple", "screen": "15.3", "os": "macOS"}, weight=0.6),
            Tier("MacBook Pro{ser} M{gen}", "M{part}LE/A", 1_899_990, gens=("3", "4"),
                 sers=(" 14", " 16"), ser_price=(1.0, 1.35), part=ALNUM, part_len=4, sizes=(1, 5),
                 attrs={"cpu": "Chip Apple", "screen": "14.2", "os": "macOS"}, weight=0.4),
        )),
    ),
)

REFRIGERADORES = Category(
    key="refrigeradores",
    weight=0.09,
    axis=FRIDGE_AXIS,
    colors=("Inox", "Silver", "Blanco", "Negro", "Grafito"),
    paths={
        "falabella": "Electrohogar > Refrigeración > Refrigeradores",
        "ripley": "Electro > Refrigeración > Refrigeradores",
        "paris": "Línea Blanca > Refrigeración > Refrigeradores",
    },
    titles={
        "falabella": (
            "Refrigerador {type} {size} Litros {code}",
            "Refrigerador {brand} {type} {size} L {color} {code}",
        ),
        "ripley": (
            "REFRIGERADOR {brand} {type} {size} LT {code}",
            "Refrigerador {type} {brand} {code} {size} Litros {color}",
        ),
        "paris": (
            "Refrigerador {brand} {type} {size} L {code}",
            "Refrigerador {type} {size} Lts {brand} {color} {code}",
        ),
    },
    brands=(
        Brand("Samsung", 22, "880", (
            Tier("Twin Cooling {gen}G{num}", "RT{s10}{gen}G{num}", 429_990, gens=("A", "B", "C"),
                 num=(6420, 100), lines=4, suffix=("S9", "B1", "WW"), sizes=(3, 9),
                 attrs={"type": "No Frost"}, weight=2),
            Tier("Side by Side RS{num}{gen}", "RS{s10}{gen}{num}", 650_990, gens=("T", "A", "C"),
                 num=(5000, 500), lines=3, suffix=("S8", "B1"), sizes=(9, 12),
                 attrs={"type": "Side by Side"}),
        )),
        Brand("LG", 20, "880", (
            Tier("Smart Inverter {ser}{gen}", "GT{s10}{ser}{gen}", 449_990, gens=("P", "K", "G"),
                 sers=("BP", "WP", "SV", "DP"), sizes=(2, 9), attrs={"type": "No Frost Inverter"},
                 weight=2),
            Tier("Side by Side GS{ser}{gen}", "GS{s10}{ser}{gen}1", 699_990, gens=("P", "K"),
                 sers=("SV", "BV", "MV"), sizes=(9, 12), attrs={"type": "Side by Side"}),
        )),
        Brand("Mabe", 18, "750", (
            Tier("No Frost RM{ser} {gen}", "RM{ser}{size}F{gen}", 359_990,
                 gens=("ZUU", "JCU", "YMX"), sers=("A", "P", "B"), sizes=(1, 8),
                 attrs={"type": "No Frost"}, weight=2),
            Tier("Frío Directo RFD{ser}{gen}", "RFD{size}{ser}{gen}", 249_990, gens=("1", "2"),
                 sers=("W", "S", "G"), sizes=(0, 5), attrs={"type": "Frío Directo"}),
        )),
        Brand("Whirlpool", 15, "789", (
            Tier("Xpert Energy Saver {ser}{gen}", "WRM{s10}{ser}{gen}", 399_990,
                 gens=("DWC", "BHC"), sers=("AK", "AB", "BK"), sizes=(3, 10),
                 attrs={"type": "No Frost"}),
        )),
        Brand("Fensa", 15, "780", (
            Tier("Advantage {num}{gen}", "FRF{size}{num}{gen}", 309_990, gens=("E", "X"),
                 num=(5300, 1000), lines=4, sizes=(0, 8), attrs={"type": "No Frost"}),
        )),
    ),
)

LAVADORAS = Category(
    key="lavadoras",
    weight=0.09,
    axis=WASHER_AXIS,
    colors=("Blanco", "Gris", "Silver", "Negro"),
    paths={
        "falabella": "Electrohogar > Lavado > Lavadoras",
        "ripley": "Electro > Lavado y secado > Lavadoras",
        "paris": "Línea Blanca > Lavado > Lavadoras",
    },
    titles={
        "falabella": (
            "Lavadora {type} {size} kg {code}",
            "Lavadora {brand} {size} Kg {type} {color} {code}",
        ),
        "ripley": (
            "LAVADORA {brand} {type} {size} KG {code}",
            "Lavadora {type} {brand} {code} {size} kg",
        ),
        "paris": (
            "Lavadora {brand} {type} {size} Kilos {code}",
            "Lavadora {size} kg {type} {brand} {code} {color}",
        ),
    },
    brands=(
        Brand("Samsung", 25, "880", (
            Tier("Wobble {gen}{num}", "WA{size}{gen}{num}", 399_990, gens=("T", "B", "C"),
                 num=(5260, 100), lines=4, suffix=("BY", "BW"), sizes=(4, 13),
                 attrs={"type": "Carga Superior"}, weight=2),
            Tier("EcoBubble {gen}{num}", "WW{size}{gen}{num}", 499_990, gens=("T", "B", "C"),
                 num=(4020, 100), lines=4, suffix=("CE", "CX"), sizes=(3, 10),
                 attrs={"type": "Carga Frontal"}),
        )),
        Brand("LG", 25, "880", (
            Tier("Smart Inverter WT{ser}{gen}", "WT{size}{ser}{gen}", 429_990, gens=("B", "K"),
                 sers=("BS", "WS", "DP", "DS"), sizes=(4, 14),
                 attrs={"type": "Carga Superior Inverter"}, weight=2),
            Tier("AI DD WM{ser}{gen}", "WM{size}{ser}{gen}", 549_990, gens=("2", "4", "6"),
                 sers=("VV", "WV", "BV"), suffix=("S6B", "S6W"), sizes=(3, 15),
                 attrs={"type": "Carga Frontal Inverter"}),
        )),
        Brand("Mabe", 15, "750", (
            Tier("Aqua Saver {num} {gen}", "LMA{size}{num}{gen}", 329_990, gens=("WGAB", "WBAB"),
                 num=(200, 100), lines=3, suffix=("0",), sizes=(3, 12),
                 attrs={"type": "Carga Superior"}),
        )),
        Brand("Whirlpool", 15, "789", (
            Tier("Xpert System {ser} {gen}", "WWI{size}{ser}{gen}", 379_990, gens=("HLA", "BLA"),
                 sers=("BS", "AB", "CS"), sizes=(4, 13), attrs={"type": "Carga Superior"}),
        )),
        Brand("Fensa", 12, "780", (
            Tier("Advance {num}{gen}", "FLS{size}{num}{gen}", 299_990, gens=("A", "B"),
                 num=(300, 100), lines=3, sizes=(1, 8), attrs={"type": "Carga Superior"}),
        )),
    ),
)

AUDIFONOS = Category(
    key="audifonos",
    weight=0.10,
    axis=_single(),
    colors=("Negro", "Blanco", "Azul", "Rosado", "Beige"),
    paths={
        "falabella": "Tecnología > Audio > Audífonos",
        "ripley": "Tecno > Audio > Audífonos",
        "paris": "Electro > Audio > Audífonos",
    },
    titles={
        "falabella": (
            "Audífonos {brand} {name} {type} {color}",
            "Audífonos {type} {name} {code}",
        ),
        "ripley": (
            "AUDÍFONOS {brand} {name} {type} {color}",
            "Audífono {type} {brand} {name}",
        ),
        "paris": (
            "Audífonos {type} {brand} {name} {color}",
            "{brand} {name} Audífonos {type} {code}",
        ),
    },
    brands=(
        Brand("Sony", 18, "454", (
            Tier("WH-1000XM{num}", "WH-1000XM{num}", 299_990, num=(3, 1), lines=4, step=0.1,
                 suffix=("/B", "/S"), attrs={"type": "Over Ear Noise Cancelling"}),
            Tier("WH-CH{num}{gen}", "WH-CH{num}{gen}", 49_990, gens=("", "N"), num=(520, 200),
                 lines=2, step=0.6, suffix=("/B", "/L"), attrs={"type": "Bluetooth On Ear"}),
            Tier("WF-C{num}{gen}", "WF-C{num}{gen}", 69_990, gens=("", "N"), num=(500, 200),
                 lines=2, step=0.5, attrs={"type": "In Ear True Wireless"}),
            Tier("WF-1000XM{num}", "WF-1000XM{num}", 249_990, num=(3, 1), lines=3, step=0.1,
                 attrs={"type": "In Ear Noise Cancelling"}),
        )),
        Brand("JBL", 28, "692", (
            Tier("Tune {num}{gen}", "JBLT{num}{gen}", 44_990, gens=("BT", "NC"), num=(520, 100),
                 lines=4, step=0.35, suffix=("BLKAM", "WHTAM", "BLUAM"),
                 attrs={"type": "Inalámbricos Bluetooth"}, weight=2),
            Tier("Live {num}{gen}", "JBLLIVE{num}{gen}", 99_990, gens=("NC", "BT"), num=(460, 200),
                 lines=3, step=0.4, suffix=("BLKAM", "BLUAM"),
                 attrs={"type": "Over Ear Bluetooth"}),
            Tier("Wave {ser}", "JBLW{SER}", 39_990, sers=("Buds", "Beam", "Flex", "200TWS"),
                 ser_price=(1.0, 1.2, 1.1, 0.8), suffix=("BLK", "WHT"),
                 attrs={"type": "In Ear True Wireless"}),
            Tier("Endurance {ser}", "JBLENDUR{SER}", 59_990,
                 sers=("Peak 3", "Race", "Run 2", "Race 2", "Peak 4", "Zone"),
                 ser_price=(1.6, 1.0, 0.6, 1.1, 1.8, 0.8), attrs={"type": "Deportivos"}),
        )),
        Brand("Apple", 15, "019", (
            Tier("AirPods{ser}", "M{part}AM/A", 199_990,
                 sers=(" 2", " 3", " 4", " 4 con Cancelación de Ruido", " Pro", " Pro 2", " Pro 3",
                       " Max"),
                 ser_price=(0.6, 0.8, 0.75, 0.95, 1.1, 1.3, 1.4, 3.0), part=ALNUM, part_len=4,
                 attrs={"type": "Inalámbricos"}),
        )),
        Brand("Samsung", 14, "880", (
            Tier("Galaxy Buds{gen}{ser}", "SM-R{num}{gc}", 129_990, gens=("", "2", "3"),
                 gen_codes=("", "N", "NZ"), sers=("", " Pro", " FE"), ser_price=(1.0, 1.5, 0.7),
                 num=(177, 333), attrs={"type": "In Ear True Wireless"}),
        )),
        Brand("Xiaomi", 15, "695", (
            Tier("Redmi Buds {gen}{ser}", "M{part}E1", 24_990, gens=("4", "5", "6"),
                 sers=("", " Pro", " Lite", " Active"), ser_price=(1.0, 1.8, 0.7, 0.8),
                 part=DIGITS, part_len=4, attrs={"type": "True Wireless"}),
        )),
        Brand("Huawei", 5, "694", (
            Tier("FreeBuds {gen}{ser}", "T{part}", 69_990, gens=("5", "6"),
                 sers=("i", " SE", " Pro"), ser_price=(1.0, 0.6, 2.0), part=DIGITS, part_len=4,
                 attrs={"type": "True Wireless"}),
        )),
        Brand("Philips", 5, "871", (
            Tier("TAT{num}", "TAT{num}", 19_990, num=(1108, 100), lines=4, step=0.3,
                 suffix=("BK/00", "WT/00"), attrs={"type": "In Ear Bluetooth"}),
        )),
    ),
)

PARLANTES = Category(
    key="parlantes",
    weight=0.07,
    axis=_single(),
    colors=("Negro", "Azul", "Rojo", "Verde", "Camuflado"),
    paths={
        "falabella": "Tecnología > Audio > Parlantes Bluetooth",
        "ripley": "Tecno > Audio > Parlantes",
        "paris": "Electro > Audio > Parlantes",
    },
    titles={
        "falabella": (
            "Parlante {type} {brand} {name} {color}",
            "Parlante {name} {type} {code}",
        ),
        "ripley": (
            "PARLANTE {brand} {name} {type}",
            "Parlante {type} {brand} {name} {color}",
        ),
        "paris": (
            "Parlante {brand} {name} {type} {color}",
            "{brand} {name} Parlante {type}",
        ),
    },
    brands=(
        Brand("JBL", 40, "692", (
            Tier("{ser} {gen}", "JBL{SER}{gen}", 109_990, gens=("4", "5", "6"),
                 sers=("Flip", "Charge", "Go", "Clip", "Xtreme"),
                 ser_price=(1.0, 1.5, 0.35, 0.55, 2.8), suffix=("BLKAM", "BLUAM", "REDAM"),
                 attrs={"type": "Bluetooth Portátil"}, weight=2),
            Tier("PartyBox {num}{gen}", "JBLPARTYBOX{num}{gc}AM", 349_990, gens=("", " Encore"),
                 gen_codes=("", "ENC"), num=(110, 200), lines=4, step=0.5,
                 attrs={"type": "Karaoke para Fiestas"}),
        )),
        Brand("Sony", 18, "454", (
            Tier("SRS-{gen}{num}", "SRS-{gen}{num}", 59_990, gens=("XB", "XE", "XG"), num=(13, 10),
                 lines=4, step=0.5, suffix=("/B", "/L"), attrs={"type": "Bluetooth Portátil"}),
            Tier("ULT Field {num}", "SRS-ULT{num}0", 129_990, num=(1, 6), lines=2, step=1.2,
                 attrs={"type": "Bluetooth Portátil"}),
        )),
        Brand("LG", 12, "880", (
            Tier("XBOOM {ser}{num}", "{ser}{num}S", 149_990, sers=("XL", "XG", "XO"), num=(5, 2),
                 step=0.3, attrs={"type": "Bluetooth"}),
        )),
        Brand("Philips", 10, "871", (
            Tier("TAS{num}", "TAS{num}", 29_990, num=(1505, 1000), lines=4, step=0.5,
                 suffix=("B/00", "/00"), attrs={"type": "Bluetooth Portátil"}),
        )),
        Brand("Xiaomi", 10, "695", (
            Tier("Sound {ser}{gen}", "MDZ-{num}-DB{gc}", 39_990, gens=("", " 2"),
                 gen_codes=("", "2"), sers=("Pocket", "Outdoor", "Move", "Party"),
                 ser_price=(0.6, 1.0, 1.5, 2.5), num=(35, 2), attrs={"type": "Bluetooth"}),
        )),
        Brand("Marshall", 10, "735", (
            Tier("{ser} {gen}", "{part}", 179_990, gens=("II", "III"),
                 sers=("Emberton", "Willen", "Stanmore", "Middleton"),
                 ser_price=(1.0, 0.55, 2.3, 1.6), part=DIGITS, part_len=7,
                 attrs={"type": "Bluetooth Portátil"}),
        )),
    ),
)

TABLETS = Category(
    key="tablets",
    weight=0.07,
    axis=TABLET_AXIS,
    colors=("Gris", "Plateado", "Azul", "Grafito"),
    grouped=True,
    paths={
        "falabella": "Tecnología > Computadores > Tablets",
        "ripley": "Tecno > Computación > Tablets",
        "paris": "Tecnología > Tablets",
    },
    titles={
        "falabella": (
            'Tablet {brand} {name} {screen}" {size}GB {color}',
            "Tablet {name} {size} GB {conn} {code}",
        ),
        "ripley": (
            'TABLET {brand} {name} {screen}" {size}GB {conn}',
            "Tablet {brand} {name} {size}GB {color}",
        ),
        "paris": (
            "Tablet {brand} {name} {size}GB {screen} Pulgadas",
            '{brand} {name} {screen}" {size}GB {conn} {color}',
        ),
    },
    brands=(
        Brand("Apple", 30, "019", (
            Tier("iPad{ser} {gen}", "M{part}LE/A", 449_990, gens=("10ma Gen", "11va Gen"),
                 sers=("", " Air", " Pro"), ser_price=(1.0, 1.5, 2.4), part=ALNUM, part_len=4,
                 sizes=(0, 4), attrs={"screen": "10.9", "conn": "Wi-Fi"}),
        )),
        Brand("Samsung", 28, "880", (
            Tier("Galaxy Tab A{gen}{ser}", "SM-X{num}{gc}", 149_990, gens=("8", "9", "10"),
                 gen_codes=("N", "NZ", "NB"), sers=("", "+"), ser_price=(1.0, 1.4), num=(110, 100),
                 sizes=(0, 3), attrs={"screen": "11", "conn": "Wi-Fi"}, weight=2),
            Tier("Galaxy Tab S{gen}{ser}", "SM-X{num}{gc}", 599_990, gens=("8", "9", "10"),
                 gen_codes=("N", "NZ", "NB"), sers=("", " FE", "+", " Ultra"),
                 ser_price=(1.0, 0.7, 1.3, 1.8), num=(700, 100), sizes=(1, 4),
                 attrs={"screen": "11", "conn": "Wi-Fi"}),
        )),
        Brand("Lenovo", 18, "195", (
            Tier("Tab M{gen}{ser}", "ZA{part}CL", 149_990, gens=("9", "10", "11"),
                 sers=("", " Plus", " HD"), ser_price=(1.0, 1.3, 0.9), part=ALNUM, part_len=4,
                 sizes=(0, 3), attrs={"screen": "10.1", "conn": "Wi-Fi"}),
        )),
        Brand("Xiaomi", 16, "695", (
            Tier("Redmi Pad{ser}{gen}", "2{part}G", 179_990, gens=("", " 2"),
                 sers=(" SE", "", " Pro"), ser_price=(0.8, 1.0, 1.4), part=ALNUM, part_len=8,
                 sizes=(0, 3), attrs={"screen": "11", "conn": "Wi-Fi"}),
        )),
        Brand("Huawei", 8, "694", (
            Tier("MatePad {gen}{ser}", "{part}-W09", 249_990, gens=("11", "11.5"),
                 sers=("", " SE", " Air"), ser_price=(1.0, 0.7, 1.5), part=LETTERS, part_len=3,
                 sizes=(0, 3), attrs={"screen": "11", "conn": "Wi-Fi"}),
        )),
    ),
)

CONSOLAS = Category(
    key="consolas",
    weight=0.04,
    axis=_single(),
    colors=("Blanco", "Negro"),
    paths={
        "falabella": "Tecnología > Videojuegos > Consolas",
        "ripley": "Tecno > Mundo Gamer > Consolas",
        "paris": "Tecnología > Gamer > Consolas",
    },
    titles={
        "falabella": ("Consola {name} {code}", "Consola {brand} {name} {color}"),
        "ripley": ("CONSOLA {name} {color}", "Consola {brand} {name}"),
        "paris": ("Consola {name} {brand}", "Consola {brand} {name} {code}"),
    },
    brands=(
        Brand("Sony", 45, "711", (
            Tier("PlayStation 5 {ser}", "CFI-{num}", 549_990,
                 sers=("Slim", "Slim Digital", "Pro", "Slim + EA Sports FC 25", "Slim + Astro Bot",
                       "Slim Digital + Fortnite Cobalt Star", "Slim + Call of Duty Black Ops 6",
                       "Slim + Gran Turismo 7", "Slim + Marvel's Spider-Man 2",
                       "Slim Digital + Astro Bot", "Pro + 2 Controles DualSense"),
                 ser_price=(1.0, 0.87, 1.65, 1.1, 1.08, 0.92, 1.12, 1.1, 1.12, 0.95, 1.8),
                 num=(2015, 15)),
        )),
        Brand("Nintendo", 35, "045", (
            Tier("Switch {ser}", "HEG-{num}", 349_990,
                 sers=("OLED", "Lite", "OLED + Mario Kart 8 Deluxe", "2", "2 + Mario Kart World",
                       "Lite + Animal Crossing", "OLED Edición Zelda", "2 + Donkey Kong Bananza",
                       "Lite Hyrule Edition"),
                 ser_price=(1.0, 0.63, 1.15, 1.45, 1.6, 0.75, 1.1, 1.6, 0.7), num=(1, 1),
                 num_width=3),
        )),
        Brand("Microsoft", 20, "889", (
            Tier("Xbox Series {ser}", "RRS-{num}", 349_990,
                 sers=("S 512GB", "X 1TB", "S 1TB", "X 2TB Galaxy Black", "X Digital",
                       "S 512GB + Game Pass 3 meses", "X 1TB + Forza Horizon 5"),
                 ser_price=(1.0, 1.7, 1.2, 2.1, 1.55, 1.1, 1.8), num=(1, 1), num_width=5),
        )),
    ),
)

MICROONDAS = Category(
    key="microondas",
    weight=0.06,
    axis=MICRO_AXIS,
    colors=("Blanco", "Negro", "Silver", "Espejo"),
    paths={
        "falabella": "Electrohogar > Cocina > Microondas",
        "ripley": "Electro > Cocina > Microondas",
        "paris": "Línea Blanca > Cocina > Microondas",
    },
    titles={
        "falabella": (
            "Microondas {brand} {size} Litros {type} {code}",
            "Horno Microondas {type} {size} L {code}",
        ),
        "ripley": (
            "MICROONDAS {brand} {size} LT {type} {code}",
            "Microondas {type} {brand} {code} {size} Litros",
        ),
        "paris": (
            "Microondas {brand} {size} L {type} {color} {code}",
            "Horno Microondas {brand} {size} Lts {code}",
        ),
    },
    brands=(
        Brand("Samsung", 25, "880", (
            Tier("MS{gen}{num}", "MS{size}{gen}{num}", 99_990, gens=("F", "J", "K", "T"),
                 num=(3513, 100), lines=3, suffix=("AS", "AK", "AW"), sizes=(1, 5),
                 attrs={"type": "Digital"}, weight=2),
            Tier("MG{gen}{num}", "MG{size}{gen}{num}", 129_990, gens=("F", "J", "K", "T"),
                 num=(3515, 100), lines=3, suffix=("AK", "AS"), sizes=(2, 6),
                 attrs={"type": "Con Grill"}),
        )),
        Brand("LG", 25, "880", (
            Tier("NeoChef {num}{gen}", "MS{size}{num}{gen}", 109_990, gens=("GIS", "DIS", "CIS"),
                 num=(32, 3), lines=4, sizes=(1, 7), attrs={"type": "Inverter"}, weight=2),
            Tier("Grill MH{num}{gen}", "MH{size}{num}{gen}", 139_990, gens=("GIS", "DIS"),
                 num=(35, 10), lines=3, sizes=(2, 7), attrs={"type": "Con Grill"}),
        )),
        Brand("Mabe", 20, "750", (
            Tier("HMM {ser}{gen}", "HMM{size}{ser}{gen}", 84_990, gens=("BNWP", "SNWP"),
                 sers=("S", "P", "M"), sizes=(0, 5), attrs={"type": "Digital"}),
        )),
        Brand("Whirlpool", 15, "789", (
            Tier("WMS {num}{gen}", "WMS{size}{num}{gen}", 94_990, gens=("B", "S", "W"), num=(1, 1),
                 num_width=3, lines=3, sizes=(1, 6), attrs={"type": "Digital"}),
        )),
        Brand("Oster", 15, "053", (
            Tier("POG{gen}{num}", "POG{gen}{size}{num}", 69_990, gens=("N", "S", "M"), num=(1, 1),
                 num_width=2, lines=3, sizes=(0, 5), attrs={"type": "Mecánico"}),
        )),
    ),
)

# fmt: on

CATEGORIES: tuple[Category, ...] = (
    TELEVISORES,
    SMARTPHONES,
    NOTEBOOKS,
    REFRIGERADORES,
    LAVADORAS,
    AUDIFONOS,
    PARLANTES,
    TABLETS,
    CONSOLAS,
    MICROONDAS,
)

# Every attribute a template may reference; missing ones render as "".
TEXT_ATTRS: tuple[str, ...] = tuple(
    sorted(
        {k for c in CATEGORIES for v in c.axis for k in v.attrs}
        | {k for c in CATEGORIES for b in c.brands for t in b.tiers for k in t.attrs}
    )
)
