"""Which public accounts may disseminate or reprint current-affairs news (Art. 7 §2).

"Public accounts opened by news work units and news websites may be used to
disseminate or reprint current affairs-type news, public accounts set up by
non-news work units who have obtained Internet news information service
qualifications may be used to reprint current affairs-type news. Other public
accounts may not [...] without approval."

The category gives the default; a reviewer's explicit approval can raise it,
never lower it below what the category allows. The result is stored on the
public account and read by the news-permission check from the snapshot.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from ..domain.policy_types import AccountCategory, NewsPermission

BY_CATEGORY: Mapping[AccountCategory, NewsPermission] = MappingProxyType(
    {
        AccountCategory.NEWS_UNIT: NewsPermission.PUBLISH,
        AccountCategory.NEWS_SERVICE_LICENSEE: NewsPermission.REPRINT,
        AccountCategory.GOVERNMENT: NewsPermission.NONE,
        AccountCategory.ENTERPRISE: NewsPermission.NONE,
        AccountCategory.PUBLIC_INSTITUTION: NewsPermission.NONE,
        AccountCategory.PEOPLES_ORGANIZATION: NewsPermission.NONE,
        AccountCategory.INDIVIDUAL: NewsPermission.NONE,
        AccountCategory.OTHER: NewsPermission.NONE,
    }
)


def news_permission_for(category: AccountCategory, approved: NewsPermission = NewsPermission.NONE) -> NewsPermission:
    """The effective permission: the category's default, or an explicit approval if higher."""
    default = BY_CATEGORY[AccountCategory(category)]
    approved = NewsPermission(approved)
    return approved if approved.rank > default.rank else default
