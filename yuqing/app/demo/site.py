"""The demo's sample web: a fictional hospital's news, feeds and reviews, over simulated hours.

Phase 0 is an ordinary morning (publicity, a free clinic, an award, look-alike hospitals
that must be ignored). From phase 1 a crisis develops: a forum post about a mother who
died after a caesarean, then reposts across sites, then provincial media. Each phase
shows what a crawler would find at that hour.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import format_datetime
from urllib.parse import parse_qs, urlparse

HOSPITAL = "江城市第一人民医院"


@dataclass(frozen=True)
class Story:
    """One article, post or feed item as it appears on the sample web."""

    slug: str
    phase: int
    hour: float  # hours after the demo's start when it was published
    title: str
    body: str
    author: str = ""
    site: str = "jcdaily"  # which sample site carries it


# Local daily's feed (RSS source, tier 3) and the sites the search source finds.
STORIES: list[Story] = [
    Story("robot-surgery", 0, 0.5, "江城一院成功完成首例机器人辅助心脏搭桥手术",
          "本报讯 近日，江城市第一人民医院心血管内科团队成功完成我市首例机器人辅助冠状动脉搭桥手术。"
          "患者术后第三天即下床活动，恢复良好。医院表示，将继续引进先进技术，造福本地患者。", "记者 周洁"),
    Story("free-clinic", 0, 1.0, "江城市第一人民医院开展社区义诊 为高血压患者免费检查",
          "重阳节前夕，江城市第一人民医院组织心血管内科、骨科专家走进社区开展义诊，"
          "为三百余名高血压、糖尿病患者免费测量血压血糖并讲解用药知识，居民纷纷点赞。", "通讯员 吴敏"),
    Story("award", 0, 1.5, "江城一院获评省级文明单位",
          "日前，省文明委公布新一批省级文明单位名单，江城市第一人民医院榜上有名。"
          "医院近年来持续改善就医流程，推行预约诊疗，门诊平均等候时间缩短四成。", "记者 周洁"),
    Story("lookalike", 0, 1.8, "海城市一院启用新门诊大楼",
          "海城市一院新门诊大楼今日正式启用，设置诊室一百二十间。海城市第一人民医院负责人介绍，"
          "新大楼将大大缓解看病难问题。", "记者 孙磊"),
    Story("flu-tips", 0, 2.0, "冬季流感高发 专家提醒老人儿童及时接种疫苗",
          "进入冬季，流感进入高发期。疾控专家提醒，老人和儿童是高危人群，应及时接种流感疫苗，"
          "出现高热等症状及时就医。", "记者 周洁"),
    # phase 1: the first post, on a forum
    Story("forum-post", 1, 4.0, "网友爆料：江城一院产妇剖宫产术后死亡 家属质疑抢救延误",
          "昨夜，网友“小雨妈妈”发帖称，其亲属在江城市第一人民医院产科剖宫产后大出血，"
          "家属多次呼叫医生无人理会，延误抢救导致产妇死亡。家属质疑医院隐瞒病情，要求公开病历、讨说法。"
          "帖子称医生态度冷漠，事发后医院拒绝给出解释。", "小雨妈妈", "forum"),
    # phase 2: reposts and more posts across sites
    Story("repost-1", 2, 5.0, "转载｜江城一院产妇术后死亡 家属质疑抢救延误",
          "昨夜，网友“小雨妈妈”发帖称，其亲属在江城市第一人民医院产科剖宫产后大出血，"
          "家属多次呼叫医生无人理会，延误抢救导致产妇死亡。家属质疑医院隐瞒病情，要求公开病历、讨说法。"
          "帖子称医生态度冷漠，事发后医院拒绝给出解释。（来源：网络）", "本地生活圈", "citylife"),
    Story("repost-2", 2, 5.2, "江城一院产妇死亡事件：家属拉横幅讨说法",
          "今天上午，在江城市第一人民医院门诊楼前，数名家属拉起横幅，称产妇在该院剖宫产术后死亡，"
          "质疑医院抢救延误、隐瞒病情，要求医院给出说法并赔偿。围观群众众多，现场一度混乱。", "江城热线", "hotline"),
    Story("repost-3", 2, 5.5, "产妇术后身亡 江城一院被指延误抢救",
          "多名网友转发称，江城市第一人民医院一名产妇剖宫产后大出血死亡，家属质疑医生延误抢救，"
          "并称事发后医院态度冷漠、拒绝沟通。目前医院尚未公开回应。", "江城热线", "hotline"),
    Story("repost-4", 2, 5.8, "江城一院产妇死亡 家属要求公开病历",
          "产妇在江城市第一人民医院剖宫产后死亡一事持续发酵。家属表示，医院至今拒绝提供完整病历，"
          "他们怀疑存在医疗事故，已向卫健委投诉，要求彻查。", "本地生活圈", "citylife"),
    Story("repost-5", 2, 6.0, "网传江城一院产妇死亡 家属质疑抢救延误 已向卫健委投诉",
          "网传江城市第一人民医院产科一产妇术后死亡，家属质疑抢救延误，怀疑医疗事故，"
          "已向市卫健委投诉并要求调查。网友纷纷留言要求医院给出说法。", "江城热线", "hotline"),
]

# Provincial media (web source, tier 2): the list page and its articles.
PROVINCE_ARTICLES: list[Story] = [
    Story("p-policy", 0, 0.2, "省卫健委部署冬季医疗服务保障工作",
          "省卫生健康委员会日前召开会议，部署冬季医疗服务保障工作，要求各地医院做好发热门诊、"
          "急诊急救和血液供应保障，进一步改善群众就医体验。", "省健康报记者 林涛", "province"),
    Story("p-newcampus", 0, 1.2, "江城市第一人民医院新院区项目开工",
          "江城市第一人民医院新院区项目近日开工建设，规划床位一千二百张，建成后将成为区域医疗中心。"
          "项目总投资约二十亿元，预计三年内建成。", "省健康报记者 林涛", "province"),
    Story("p-death", 3, 7.5, "江城一院产妇死亡事件追踪：卫健委介入调查 涉事医生已停职",
          "记者从江城市卫健委获悉，针对网传江城市第一人民医院产妇剖宫产术后死亡一事，"
          "市卫健委已成立调查组介入调查，涉事医生已被停职。家属质疑医院延误抢救、隐瞒病情，"
          "要求公开病历并追究责任。医院方面表示将积极配合调查，调查结果将及时向社会公布。",
          "省健康报记者 林涛", "province"),
]

# Patient reviews (reviews source, tier 4), newest first on the page.
REVIEWS: list[tuple[int, float, str, int, str]] = [
    # (phase, hour, author, rating, text)
    (0, 0.3, "王女士", 5, "江城一院心内科王建国主任非常耐心，解释得很清楚，手术很成功，感谢医护人员！"),
    (0, 0.8, "老李", 4, "江城一院环境干净，护士态度好，就是停车有点难。"),
    (0, 1.1, "陈先生", 2, "在江城一院挂号排队两个小时，等候时间太长了，希望改进。"),
    (0, 1.6, "张阿姨", 5, "江城市第一人民医院骨科手术做得好，恢复很快，推荐。"),
    (2, 5.4, "路人甲", 1, "江城一院产科太可怕了，产妇大出血死亡，医生延误抢救还态度冷漠，家属讨说法没人理！"),
    (2, 5.9, "小雨家属", 1, "我们家人死在江城一院产科，医院拒绝公开病历，我们要求彻查医疗事故！"),
]

SITE_NAMES = {"jcdaily": "江城日报", "forum": "江城论坛", "citylife": "本地生活圈", "hotline": "江城热线",
              "province": "省健康报"}


def visible(items: list[Story], phase: int) -> list[Story]:
    """What has been published by this phase, newest first."""
    return sorted((s for s in items if s.phase <= phase), key=lambda s: s.hour, reverse=True)


def article_url(story: Story) -> str:
    return f"/{story.site}/{story.slug}.html"


def article_html(story: Story, t0: datetime) -> str:
    """A real-looking article page, with the noise a real news site has around the body."""
    when = (t0 + timedelta(hours=story.hour)).astimezone()
    site = SITE_NAMES[story.site]
    paragraphs = "".join(f"<p>{html.escape(p)}。</p>" for p in story.body.split("。") if p)
    return f"""<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8">
<title>{html.escape(story.title)}_{site}</title>
<meta name="author" content="{html.escape(story.author)}">
<meta property="article:published_time" content="{when.isoformat()}">
</head><body>
<div class="nav"><a href="/">首页</a> | <a href="/{story.site}/">新闻</a> | 健康 | 社会 | 视频</div>
<div class="article">
<h1>{html.escape(story.title)}</h1>
<div class="info">{when:%Y-%m-%d %H:%M} 来源：{site} 作者：{html.escape(story.author)}</div>
<div class="content">{paragraphs}</div>
<div class="editor">责任编辑：刘芳</div>
</div>
<div class="related"><h3>相关阅读</h3><ul><li><a href="/{story.site}/">更多新闻</a></li></ul></div>
<div class="footer">版权所有 © {site} 未经授权禁止转载</div>
</body></html>"""


def rss(items: list[Story], t0: datetime, base: str, title: str) -> str:
    """An RSS 2.0 feed of the given stories."""
    entries = []
    for s in items:
        when = format_datetime(t0 + timedelta(hours=s.hour))
        entries.append(f"""<item><title>{html.escape(s.title)}</title>
<link>{base}{article_url(s)}</link><guid>{base}{article_url(s)}</guid>
<pubDate>{when}</pubDate><author>{html.escape(s.author)}</author>
<description>{html.escape(s.body)}</description></item>""")
    # Real servers often send whitespace before the XML declaration; the crawler copes.
    return f"""
<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>{html.escape(title)}</title><link>{base}/</link>
<description>{html.escape(title)}</description>
{''.join(entries)}
</channel></rss>"""


def list_page(items: list[Story], site: str) -> str:
    """A news list page linking to article pages (plus links the crawler must not follow)."""
    links = "".join(f'<li><a href="{article_url(s)}">{html.escape(s.title)}</a></li>' for s in items)
    return f"""<!DOCTYPE html><html><head><meta charset="utf-8"><title>{SITE_NAMES[site]} - 新闻</title></head>
<body><h1>{SITE_NAMES[site]}</h1><ul class="news-list">{links}</ul>
<p><a href="https://weibo.example.com/share">分享到微博</a> <a href="/private/admin">管理</a></p></body></html>"""


def reviews_page(phase: int, t0: datetime, page: int, per_page: int = 4) -> str:
    """Patient reviews with schema.org Review microdata, newest first, paginated."""
    shown = sorted((r for r in REVIEWS if r[0] <= phase), key=lambda r: r[1], reverse=True)
    chunk = shown[(page - 1) * per_page: page * per_page]
    items = []
    for _phase, hour, author, rating, text in chunk:
        when = (t0 + timedelta(hours=hour)).astimezone()
        items.append(f"""<div class="review" itemprop="review" itemscope itemtype="https://schema.org/Review">
<span itemprop="author">{html.escape(author)}</span>
<time itemprop="datePublished" datetime="{when.isoformat()}">{when:%Y-%m-%d %H:%M}</time>
<span itemprop="reviewRating" itemscope itemtype="https://schema.org/Rating">
<meta itemprop="ratingValue" content="{rating}">{'★' * rating}</span>
<p itemprop="reviewBody">{html.escape(text)}</p></div>""")
    nxt = f'<a rel="next" href="/reviews/jcyy?page={page + 1}">下一页</a>' if len(shown) > page * per_page else ""
    return f"""<!DOCTYPE html><html><head><meta charset="utf-8"><title>{HOSPITAL} 患者评价</title></head>
<body itemscope itemtype="https://schema.org/Hospital"><h1 itemprop="name">{HOSPITAL}</h1>
{''.join(items)}<div class="pager">{nxt}</div></body></html>"""


def search_results(query: str, phase: int, t0: datetime, base: str) -> str:
    """A news search answering with an RSS list of stories on any site that contain the query."""
    found = [s for s in visible(STORIES + PROVINCE_ARTICLES, phase) if query and (query in s.title or query in s.body)]
    return rss(found, t0, base, f"搜索：{query}")


ROBOTS = "User-agent: *\nDisallow: /private/\n"


def respond(path: str, phase: int, t0: datetime, base: str) -> tuple[int, str, bytes]:
    """The sample web's answer to one GET: status, content type, body."""
    parsed = urlparse(path)
    route = parsed.path
    query = parse_qs(parsed.query)
    html_type = "text/html; charset=utf-8"
    if route == "/robots.txt":
        return 200, "text/plain", ROBOTS.encode()
    if route == "/jcdaily/rss.xml":
        items = [s for s in visible(STORIES, phase) if s.site == "jcdaily" or s.site == "forum"]
        return 200, "application/rss+xml; charset=utf-8", rss(items, t0, base, "江城日报").encode("utf-8")
    if route == "/search":
        q = query.get("q", [""])[0]
        return 200, "application/rss+xml; charset=utf-8", search_results(q, phase, t0, base).encode("utf-8")
    if route in ("/province/", "/province"):
        return 200, html_type, list_page(visible(PROVINCE_ARTICLES, phase), "province").encode("utf-8")
    if route.startswith("/reviews/jcyy"):
        page = int(query.get("page", ["1"])[0] or 1)
        return 200, html_type, reviews_page(phase, t0, page).encode("utf-8")
    for story in STORIES + PROVINCE_ARTICLES:
        if route == article_url(story) and story.phase <= phase:
            if story.slug == "p-newcampus":
                # A GBK page whose server claims UTF-8, as many older Chinese sites do.
                body = article_html(story, t0).replace('charset="utf-8"', 'charset="gbk"')
                return 200, html_type, body.encode("gbk", errors="xmlcharrefreplace")
            return 200, html_type, article_html(story, t0).encode("utf-8")
    return 404, "text/plain", b"not found"
