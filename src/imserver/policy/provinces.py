"""Jurisdiction (Art. 3): which provincial-level department a public account's filing goes to.

Art. 3: "provincial-level Internet information content controlling departments
are responsible for corresponding work within their administrative areas". An
account belongs to the province it is registered in: for an organisation, the
region of its unified social credit code (GB 32100: characters 3-8 are the
GB/T 2260 administrative division, whose first two digits are the province);
for an individual, the province the applicant declares. Codes are the two-digit
GB/T 2260 province codes of the 31 provincial-level divisions of the mainland.
Pure data and functions: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

# GB/T 2260 code -> (Chinese name, English name).
PROVINCES: Mapping[str, tuple[str, str]] = MappingProxyType(
    {
        "11": ("北京市", "Beijing"),
        "12": ("天津市", "Tianjin"),
        "13": ("河北省", "Hebei"),
        "14": ("山西省", "Shanxi"),
        "15": ("内蒙古自治区", "Inner Mongolia"),
        "21": ("辽宁省", "Liaoning"),
        "22": ("吉林省", "Jilin"),
        "23": ("黑龙江省", "Heilongjiang"),
        "31": ("上海市", "Shanghai"),
        "32": ("江苏省", "Jiangsu"),
        "33": ("浙江省", "Zhejiang"),
        "34": ("安徽省", "Anhui"),
        "35": ("福建省", "Fujian"),
        "36": ("江西省", "Jiangxi"),
        "37": ("山东省", "Shandong"),
        "41": ("河南省", "Henan"),
        "42": ("湖北省", "Hubei"),
        "43": ("湖南省", "Hunan"),
        "44": ("广东省", "Guangdong"),
        "45": ("广西壮族自治区", "Guangxi"),
        "46": ("海南省", "Hainan"),
        "50": ("重庆市", "Chongqing"),
        "51": ("四川省", "Sichuan"),
        "52": ("贵州省", "Guizhou"),
        "53": ("云南省", "Yunnan"),
        "54": ("西藏自治区", "Tibet"),
        "61": ("陕西省", "Shaanxi"),
        "62": ("甘肃省", "Gansu"),
        "63": ("青海省", "Qinghai"),
        "64": ("宁夏回族自治区", "Ningxia"),
        "65": ("新疆维吾尔自治区", "Xinjiang"),
    }
)


def of_credit_code(credit_code: str) -> str | None:
    """The province of a unified social credit code's region, or None if it names none."""
    code = credit_code[2:4] if len(credit_code) == 18 else ""
    return code if code in PROVINCES else None


def department(province: str | None) -> str | None:
    """The provincial-level Internet information office a filing goes to (Art. 3)."""
    if province not in PROVINCES:
        return None
    return f"{PROVINCES[province][0]}互联网信息办公室"


def name(province: str | None) -> str | None:
    return PROVINCES[province][1] if province in PROVINCES else None
