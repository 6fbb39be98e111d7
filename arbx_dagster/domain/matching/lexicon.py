"""Words that carry product identity, in Spanish and English: general retail knowledge.

Two listings of one product line differ in a few words that a similarity score barely
notices: a tier ('pro'), a colour, a version ('mark ii'), what the item *is* ('case for
...', 'battery for ...'), a form factor ('microSD' vs 'SD', 'SO-DIMM' vs 'DIMM'), kit or
body only, new or refurbished. The lists are written from how stores title products in
general, never from benchmark rows (other datasets, with other products, are scored with
the same lists).
"""

from __future__ import annotations

# Words that are followed by a number without naming a model ('with 3 ...', 'pack 2').
ANCHOR_STOPWORDS = (
    "with",
    "for",
    "de",
    "para",
    "con",
    "y",
    "and",
    "x",
    "w",
    "the",
    "of",
    "hasta",
    "up",
    "to",
    "por",
    "en",
    "in",
    "pack",
    "set",
    "kit",
    "n",
    "no",
    "nro",
    "modelo",
    "model",
)

# Words that make a different model of the same line (iPhone 15 vs iPhone 15 Pro).
TIER_WORDS = (
    "pro",
    "max",
    "plus",
    "ultra",
    "lite",
    "mini",
    "fe",
    "se",
    "air",
    "neo",
    "prime",
    "edge",
    "note",
    "slim",
    "xl",
)

# Colour words (ES / EN) -> one canonical colour.
COLORS: dict[str, str] = {
    "negro": "black",
    "negra": "black",
    "black": "black",
    "blk": "black",
    "blanco": "white",
    "blanca": "white",
    "white": "white",
    "wh": "white",
    "azul": "blue",
    "blue": "blue",
    "celeste": "lightblue",
    "rojo": "red",
    "roja": "red",
    "red": "red",
    "verde": "green",
    "green": "green",
    "gris": "gray",
    "gray": "gray",
    "grey": "gray",
    "grafito": "graphite",
    "graphite": "graphite",
    "plateado": "silver",
    "plateada": "silver",
    "plata": "silver",
    "silver": "silver",
    "dorado": "gold",
    "dorada": "gold",
    "gold": "gold",
    "rosado": "pink",
    "rosada": "pink",
    "rosa": "pink",
    "pink": "pink",
    "morado": "purple",
    "morada": "purple",
    "lila": "purple",
    "purple": "purple",
    "violeta": "purple",
    "amarillo": "yellow",
    "yellow": "yellow",
    "naranjo": "orange",
    "naranja": "orange",
    "orange": "orange",
    "cafe": "brown",
    "marron": "brown",
    "brown": "brown",
    "beige": "beige",
    "crema": "beige",
}

# Connectivity / resolution tags: not model tokens ('5g' vs 'a14' is no conflict).
NOT_SHORT_CODES = ("2g", "3g", "4g", "5g", "2k", "4k", "8k", "hd", "mp3", "mp4", "usb")

# Roman numerals and spelled versions that make a later model ('Mark II', 'RX100 III').
VERSION_WORDS: dict[str, str] = {
    "ii": "2",
    "iii": "3",
    "iv": "4",
    "vi": "6",
    "vii": "7",
    "viii": "8",
    "mkii": "2",
    "mkiii": "3",
    "mkiv": "4",
}
# Versions written with digits: 'mk2', 'v3', '2nd gen', 'gen 2', '3a generacion'.
VERSION_PATTERNS = (
    r"\bmk ?(\d)\b",
    r"\bv(\d)\b",
    r"\b(\d)(?:st|nd|rd|th|a|da|ra|ta)? gen(?:eration|eracion)?\b",
    r"\bgen(?:eration|eracion)? (\d)\b",
)

# What an item *is* when it serves another product: a case, a battery, a charger... One
# side naming such a thing and the other not is the accessory-vs-product mistake.
ACCESSORY_WORDS = frozenset(
    {
        # English
        "case",
        "cases",
        "cover",
        "covers",
        "sleeve",
        "pouch",
        "bag",
        "holster",
        "skin",
        "shell",
        "protector",
        "strap",
        "lanyard",
        "battery",
        "batteries",
        "charger",
        "charging",
        "adapter",
        "adaptor",
        "cable",
        "cord",
        "mount",
        "bracket",
        "stand",
        "holder",
        "cradle",
        "dock",
        "grip",
        "tripod",
        "remote",
        "replacement",
        "refill",
        "cartridge",
        "toner",
        "ink",
        "filter",
        "hood",
        "cap",
        "film",
        "housing",
        "accessory",
        "accessories",
        "part",
        "parts",
        "spare",
        "stylus",
        "earpads",
        # Spanish
        "funda",
        "estuche",
        "carcasa",
        "bolso",
        "mochila",
        "lamina",
        "mica",
        "correa",
        "bateria",
        "baterias",
        "pila",
        "pilas",
        "cargador",
        "adaptador",
        "soporte",
        "tripode",
        "remoto",
        "repuesto",
        "recarga",
        "cartucho",
        "tinta",
        "filtro",
        "tapa",
        "accesorio",
        "accesorios",
        "lapiz",
    }
)

# Where a title turns to the product it serves: 'case for iPhone 15', 'funda para ...'.
FOR_MARKERS = (
    r"\bfor\b",
    r"\bpara\b",
    r"\bcompatible\b",
    r"\bfits\b",
    r"\bworks with\b",
)

# A listing that bundles more than one item (kit, combo, 'camera + lens', 'w/ lens').
BUNDLE_WORDS = frozenset(
    {"kit", "bundle", "combo", "+", "w", "includes", "including", "incl", "incluye", "set"}
)
# A camera or tool sold without its usual companion ('body only', 'solo cuerpo').
BODY_WORDS = frozenset({"body", "cuerpo", "bare"})

# Not the new product: a different offer even when the model is the same.
CONDITION_PATTERNS = (
    r"\brefurbished\b",
    r"\brenewed\b",
    r"\bused\b",
    r"\bopen box\b",
    r"\breacondicionad[oa]\b",
    r"\bseminuev[oa]\b",
    r"\busad[oa]\b",
    r"\bcertified pre owned\b",
)

# Mutually exclusive variants of one product line: (group, value, pattern on the
# normalised title). Two listings naming values of one group, none in common, are two
# products ('microSDHC' vs 'SDHC', 'SO-DIMM' vs 'DIMM', 'DDR3' vs 'DDR4', 'SSD' vs 'HDD').
# They are searched as one alternation, leftmost match first, and a fragment takes the
# first value whose pattern it matches: 'micro sd' is microSD (listed before SD), 'so
# dimm' is SO-DIMM, never also SD or DIMM.
VARIANT_PATTERNS: tuple[tuple[str, str, str], ...] = (
    ("card", "microsd", r"\bmicro ?sd(?:hc|xc)?\b|\btransflash\b|\bmicro secure digital\b"),
    ("card", "sd", r"\bsd(?:hc|xc)?\b|\bsecure digital\b"),
    ("card", "cf", r"\bcf\b|\bcompact ?flash\b"),
    ("card", "xqd", r"\bxqd\b"),
    ("card", "cfexpress", r"\bcfexpress\b"),
    ("card", "memorystick", r"\bmemory ?stick\b"),
    ("module", "sodimm", r"\bso ?dimm\b"),
    ("module", "dimm", r"\bu?dimm\b"),
    ("ddr", "ddr2", r"\b(?:lp)?ddr2\b"),
    ("ddr", "ddr3", r"\bddr3\b"),
    ("ddr", "ddr3l", r"\bddr3l\b"),
    ("ddr", "ddr4", r"\b(?:lp)?ddr4\b"),
    ("ddr", "ddr5", r"\b(?:lp)?ddr5\b"),
    ("drive", "ssd", r"\bssd\b|\bsolid state\b|\bestado solido\b"),
    ("drive", "hdd", r"\bhdd\b|\bhard (?:disk|drive)\b|\bdisco duro\b"),
    ("gender", "men", r"\bmen s?\b|\bmens\b|\bhombre\b|\bcaballero\b|\bmasculino\b"),
    ("gender", "women", r"\bwomen s?\b|\bwomens\b|\bladies\b|\bmujer\b|\bdama\b|\bfemenino\b"),
    ("gender", "kids", r"\bkids\b|\bboys\b|\bgirls\b|\bnin[oa]s?\b|\binfantil\b|\bjunior\b"),
)
