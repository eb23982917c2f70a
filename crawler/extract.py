"""Article extraction (body, title, author, publish time) for Chinese news and web pages.

The body comes from a text-density block scorer in the spirit of CEPF/GNE that understands
Chinese punctuation and old table layouts.  The scorer splits the DOM into text lines, rates each
one (non-link text with sentence punctuation is content; link lists, short unpunctuated lines,
legal notices and furniture whose shape repeats on the page, such as comment toolbars, are noise)
and picks the DOM subtree with the best content-minus-noise balance.  Inside it the article is the
densest contiguous run of lines, so comments, teaser lists and share bars that share the subtree
are left behind; a run with too little prose widens to its parent's.  Header rows, bylines,
share/print/prev-next lines, plugs and "related articles" tails are then trimmed.  trafilatura is
asked only when all this yields next to nothing.  Layouts it was not built on are measured by
bench/bench_extraction.py on hand labels kept with the tests.

Times: ``published_at`` is a naive datetime in the page's local time unless the page
states a UTC offset (e.g. ``article:published_time`` = ``2022-02-13T20:04:17+08:00``),
in which case it is timezone-aware with that offset.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

from lxml import etree
from lxml import html as lhtml

from yuqing.crawler.encoding import decode_html

log = logging.getLogger(__name__)

#: Bytes of a page we look at; the rest of a huge page is ignored (work stays bounded).
MAX_BYTES = 4 * 1024 * 1024
#: Blocks (text lines) the scorer considers; absurdly long pages are cut here.
MAX_BLOCKS = 20000


@dataclass(frozen=True)
class Article:
    """What the pipeline keeps of a page: None fields / empty text when unknown."""

    title: str | None
    author: str | None
    published_at: datetime | None
    text: str


EMPTY = Article(title=None, author=None, published_at=None, text="")


# --------------------------------------------------------------------------- metric


def char_f1(pred: str, gold: str) -> float:
    """Bag-of-characters F1 ignoring whitespace: the one metric bench and tests share."""
    p = Counter(_WS.sub("", pred))
    g = Counter(_WS.sub("", gold))
    overlap = sum((p & g).values())
    if not overlap:
        return 1.0 if not p and not g else 0.0
    precision = overlap / sum(p.values())
    recall = overlap / sum(g.values())
    return 2 * precision * recall / (precision + recall)


# --------------------------------------------------------------------------- text helpers

_WS = re.compile(r"\s+")
_CJK = "\u3000-\u303f\u3400-\u9fff\uf900-\ufaff\uff00-\uffef"
_CJK_WRAP = re.compile(rf"(?<=[{_CJK}])[ \t]*[\r\n]\s*(?=[{_CJK}])")
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"), None)
#: Sentence punctuation: its density is what tells prose from navigation.  ASCII marks
#: count only before a space or line end, so URLs and file names ('a.html') do not.
_PUNCT_RE = re.compile(r"[，。！？；、]|[,.!?;](?=\s|$)")


def count_punct(text: str) -> int:
    """Sentence punctuation marks in text."""
    return len(_PUNCT_RE.findall(text))


def normalize_line(text: str) -> str:
    """Collapse whitespace; source line-wraps inside CJK text vanish, real spaces stay single."""
    text = _CJK_WRAP.sub("", text.translate(_INVISIBLE))
    return _WS.sub(" ", text.replace("\u3000", " ").replace("\xa0", " ")).strip()


def _visible_len(text: str) -> int:
    """Characters that count for scoring (whitespace excluded)."""
    return len(_WS.sub("", text))


# --------------------------------------------------------------------------- parsing

_XML_DECL = re.compile(r"^\s*<\?xml[^>]*>", re.I)
_CLOSE_DOC = re.compile(r"</\s*(?:html|body)\s*>", re.I)
#: Never content: scripts, forms' widgets, embedded media, <head>.
DROP_TAGS = (
    "script", "style", "noscript", "iframe", "object", "embed", "svg", "canvas", "select",
    "option", "button", "input", "textarea", "head", "template", "map", "area", "link", "meta",
)
#: Structural chrome that the body scorer ignores (metadata search still sees it).
CHROME_TAGS = ("nav", "footer", "aside")
BLOCK_TAGS = frozenset(
    "p div td th tr table tbody thead tfoot li ul ol dl dd dt h1 h2 h3 h4 h5 h6 section article "
    "blockquote pre center form body html header main figure figcaption address hr fieldset "
    "caption details summary text".split()
)
# Readability's "unlikely candidate" idea, plus pinyin names common on Chinese sites.  The
# "always" words are dropped whatever they hold; the others are spared when they wrap most of
# the page's prose (class names like "js_img_share_area" on the article wrapper exist).
_ALWAYS_NOISE = re.compile(r"comment|reply|replies|respond|disqus|footer|copyright|pinglun", re.I)
_UNLIKELY = re.compile(
    r"comment|reply|replies|respond|disqus|sidebar|footer|menu|\bnav|breadcrumb|crumb|share|social|"
    r"sponsor|banner|advert|popup|related|recommend|pagination|pager|copyright|login|toolbar|"
    r"skyscraper|shoutbox|combx|community|remark|\brss|xgyd|xgwz|xiangguan|tuijian|pinglun|fenxiang",
    re.I,
)
_MAYBE_OK = re.compile(r"and|article|body|column|content|main|shadow|text|detail", re.I)
#: Share of the page's sentence punctuation that saves a weakly-unlikely element.
PROTECTED_SHARE = 0.4


def sanitize_html(text: str) -> str:
    """Drop what makes libxml2 lose content: an XML declaration, NULs, early </body></html>.

    Server-side includes often emit a header ending in </html>; browsers carry on, libxml2
    discards everything after it.
    """
    return _CLOSE_DOC.sub("", _XML_DECL.sub("", text, count=1).replace("\x00", ""))


def parse_html(text: str) -> etree._Element | None:
    """Parse (possibly truncated or malformed) HTML into an lxml tree; None if hopeless."""
    text = sanitize_html(text)
    if not text.strip():
        return None
    try:
        return lhtml.document_fromstring(text)
    except (etree.ParserError, ValueError):
        log.debug("unparseable HTML", exc_info=True)
        return None


def _drop(elements: list[etree._Element]) -> None:
    """Remove elements but keep their tail text (it belongs to the parent)."""
    for el in elements:
        if el.getparent() is not None:
            el.drop_tree()


def strip_noise(root: etree._Element) -> None:
    """Remove comments, scripts, styles, head and widgets in place."""
    _drop(list(root.iter(etree.Comment, etree.ProcessingInstruction)))
    _drop(list(root.iter(*DROP_TAGS)))


def _unlikely(el: etree._Element) -> str | None:
    """'always' / 'maybe' when class/id mark the element as page chrome, else None."""
    attrs = f"{el.get('class') or ''} {el.get('id') or ''}"
    if not attrs.strip() or not _UNLIKELY.search(attrs) or _MAYBE_OK.search(attrs):
        return None
    return "always" if _ALWAYS_NOISE.search(attrs) else "maybe"


def strip_chrome(root: etree._Element) -> None:
    """Remove nav/footer/aside and elements whose class/id names them comments, menus etc."""
    _drop(list(root.iter(*CHROME_TAGS)))
    total = count_punct(root.text_content()) or 1
    doomed = []
    for el in root.iter():
        if not isinstance(el.tag, str) or el.tag in ("html", "body", "article", "main"):
            continue
        kind = _unlikely(el)
        if kind == "always" or (kind == "maybe" and count_punct(el.text_content()) < PROTECTED_SHARE * total):
            doomed.append(el)
    _drop(doomed)


# --------------------------------------------------------------------------- blocks


@dataclass
class Block:
    """One visual line of text and the innermost block element that holds it."""

    text: str
    chars: int
    link_chars: int
    punct: int
    owner: etree._Element
    #: Short line whose shape recurs on the page ('回复 踩0 赞85', '3小时前'): record/list furniture.
    repeated: bool = False
    #: ... and it speaks the language of comment toolbars (reply, report, like, '3小时前').
    toolbar: bool = False

    @property
    def link_density(self) -> float:
        """Share of the line's characters that sit inside <a>."""
        return self.link_chars / self.chars if self.chars else 0.0


class _BlockBuilder:
    """Accumulates inline text until a block boundary, then emits a Block."""

    def __init__(self, root: etree._Element) -> None:
        self.blocks: list[Block] = []
        self.owners: list[etree._Element] = [root]
        self.parts: list[str] = []
        self.link_chars = 0

    def add(self, text: str | None, in_link: bool) -> None:
        """Append inline text, counting it as link text when inside <a>."""
        if text:
            self.parts.append(text)
            if in_link:
                self.link_chars += _visible_len(text)

    def flush(self) -> None:
        """Close the current line."""
        line = normalize_line("".join(self.parts))
        link_chars, self.parts, self.link_chars = self.link_chars, [], 0
        if line and len(self.blocks) < MAX_BLOCKS:
            chars = _visible_len(line)
            punct = count_punct(line)
            self.blocks.append(Block(line, chars, min(link_chars, chars), punct, self.owners[-1]))


def text_blocks(root: etree._Element) -> list[Block]:
    """Split the tree into lines at block elements and <br>, in document order."""
    builder = _BlockBuilder(root)
    link_depth = 0
    for event, el in etree.iterwalk(root, events=("start", "end")):
        tag = el.tag.lower() if isinstance(el.tag, str) else ""
        if event == "start":
            if tag in BLOCK_TAGS or tag == "br":
                builder.flush()
            if tag in BLOCK_TAGS:
                builder.owners.append(el)
            link_depth += tag == "a"
            builder.add(el.text, link_depth > 0)
            continue
        if tag in BLOCK_TAGS:
            builder.flush()
            builder.owners.pop()
        link_depth -= tag == "a"
        if el is not root:
            builder.add(el.tail, link_depth > 0)
    builder.flush()
    mark_repeated(builder.blocks)
    return builder.blocks


_DIGITS = re.compile(r"\d+")
_WORDY = re.compile(rf"[^\W\d_]|[{_CJK}]")
_LABEL_VALUE = re.compile(r"：|:(?!\d)")
#: Words of comment and forum furniture: who posted, when, and the reply/report/like buttons.
_TOOLBAR_WORDS = re.compile(
    r"回复|举报|[顶踩赞][\s\d(（]|点赞|分享|收藏|引用|楼主|\d+楼|网友|评论|发表于|[秒分钟小时天]前|刚刚|\bre:", re.I
)
_TIMESTAMP = re.compile(r"\d\d?:\d\d|(19|20)\d\d[-/.]\d{1,2}[-/.]\d{1,2}")
#: Lines at most this long that occur this often (digits ignored) are template furniture.
TEMPLATE_LINE_MAX, TEMPLATE_MIN_COUNT = 24, 3
#: Timestamped lines up to this long are compared by their first STAMPED_PREFIX characters.
STAMPED_LINE_MAX, STAMPED_PREFIX = 60, 8


def _template_key(block: Block) -> str | None:
    """The shape a furniture line shares with its repeats, or None for lines that are never furniture.

    A line with a timestamp is keyed by its first characters ('# re: 标题 2004-12-27 12:46 名字' ->
    '# re: 标题'), other short lines by their whole digit-blind text.  Table cells, 'label：value'
    lines (data) and lines with neither letters nor a timestamp (numbers, box-drawing art) are not.
    """
    if block.owner.tag in ("td", "th") or block.chars > STAMPED_LINE_MAX:
        return None
    shape = _DIGITS.sub("#", block.text)
    if _TIMESTAMP.search(block.text):
        return "@" + shape[:STAMPED_PREFIX]
    if block.chars <= TEMPLATE_LINE_MAX and _WORDY.search(block.text) and not _LABEL_VALUE.search(block.text):
        return shape
    return None


def mark_repeated(blocks: list[Block]) -> None:
    """Flag lines whose shape recurs on the page: the furniture of comment and list records."""
    keys = [_template_key(b) for b in blocks]
    counts = Counter(k for k in keys if k)
    for block, key in zip(blocks, keys):
        block.repeated = key is not None and counts[key] >= TEMPLATE_MIN_COUNT
        block.toolbar = block.repeated and bool(_TOOLBAR_WORDS.search(block.text))


# --------------------------------------------------------------------------- density scorer

_BOILERPLATE = re.compile(
    r"版权所有|著作权|copyright|©|免责声明|ICP备|ICP证|未经.{0,12}(授权|许可)|all rights reserved|"
    r"转载请注明|[禁严]止转载|不得转载|保留追究|联系我们|关于我们|网站地图|公网安备",
    re.I,
)
#: A summary cut off by the site ('...', '…' but not the prose ellipsis '……'), not article text.
_TEASER_END = re.compile(r"(?:\.{3}|(?<!…)…)\s*$")
#: Share of its characters that a good block may have inside links.
MAX_LINK_DENSITY = 0.5
#: A line with fewer than one sentence mark per this many characters is not prose.
SPARSE_PUNCT = 200
#: Lines shorter than this count proportionally less as content (comment snippets, captions).
SHORT_LINE = 30
#: Penalty per character for non-content text and for link text inside a candidate subtree.
TEXT_PENALTY = 0.5
LINK_PENALTY = 0.1
#: Short text in table cells is usually data (an article's table), only mildly noise.
CELL_PENALTY = 0.25
#: Flat penalty for a repeated furniture line: a comment record carries several of them.
REPEAT_PENALTY = 8.0
#: Comment toolbars cost this many times more: a comment is outweighed by its own furniture.
TOOLBAR_FACTOR = 3.0
#: Per-character cost of plain non-prose text inside an article when looking for where it ends.
RUN_TEXT_PENALTY = 0.05
#: A chosen run with less prose than this is widened to its parent's run.
THIN_BODY_CHARS = 150
#: What a closing line looks like: a bracketed sign-off, a credit word, or a finished sentence.
_CREDIT = re.compile(r"^[（(【\[].*[）)】\]]$|记者|通讯员|实习生|作者|来源|供稿|整理|报道|摄|[。！？!?]$")
#: Short plain lines kept after the densest run: reporter credits and sign-offs close an article.
CLOSING_LINES = 2
#: Descend from the best subtree into a child holding at least this share of its content.
TIGHTEN = 0.9


def is_content(block: Block) -> bool:
    """Prose-like line: few links, not a legal notice, punctuated or long."""
    if block.link_density > MAX_LINK_DENSITY:
        return False
    if block.chars < 300 and _BOILERPLATE.search(block.text):
        return False
    if block.punct * SPARSE_PUNCT < block.chars:
        return False  # a long unpunctuated run: keyword dump, tag cloud, not prose
    if _TEASER_END.search(block.text):
        return False  # '…事情的真相是“甜...': a cut-off summary in a list of other articles
    return (block.punct >= 1 and block.chars >= 8) or block.chars >= 40


def block_weight(block: Block) -> float:
    """Positive for content lines (shorter ones count less), negative for noise."""
    if is_content(block):
        n = block.chars - block.link_chars
        return n * min(1.0, n / SHORT_LINE)
    if block.repeated:
        return -REPEAT_PENALTY * (TOOLBAR_FACTOR if block.toolbar else 1)
    if block.link_density > MAX_LINK_DENSITY:
        return -LINK_PENALTY * block.chars
    return -(CELL_PENALTY if block.owner.tag in ("td", "th") else TEXT_PENALTY) * block.chars


def _subtree_scores(blocks: list[Block]) -> tuple[dict[etree._Element, float], dict[etree._Element, float]]:
    """Sum block weights (net score, and positive mass) into every ancestor element."""
    net: dict[etree._Element, float] = {}
    mass: dict[etree._Element, float] = {}
    seen: set[str] = set()
    for block in blocks:
        weight = block_weight(block)
        if weight > 0:
            if block.text in seen:  # hidden mobile/print copies must not double the score
                weight = 0.0
            seen.add(block.text)
        el = block.owner
        while el is not None:
            net[el] = net.get(el, 0.0) + weight
            if weight > 0:
                mass[el] = mass.get(el, 0.0) + weight
            el = el.getparent()
    return net, mass


def best_subtree(blocks: list[Block]) -> etree._Element | None:
    """The element with the best content-minus-noise score, tightened to a child holding most of it."""
    net, mass = _subtree_scores(blocks)
    if not mass:
        return None
    best = max(net, key=net.__getitem__)
    while True:
        kids = [child for child in best if child in mass]
        top = max(kids, key=mass.__getitem__) if kids else None
        if top is None or mass[top] < TIGHTEN * mass.get(best, 0.0):
            return best
        best = top


def _prose_chars(blocks: list[Block]) -> int:
    """Characters of prose lines: how much article a candidate really holds."""
    return sum(b.chars for b in blocks if is_content(b))


def density_blocks(root: etree._Element) -> list[Block]:
    """Lines of the densest run in the best subtree, widened to ancestors while it is thin.

    A thin choice (a lone caption, a link list, half of an article split around an ad) is
    replaced by the densest run of the parent, and so on up: the run only reaches into
    neighbours whose prose outweighs the noise between, so a short article stays short.
    """
    blocks = text_blocks(root)
    node = best_subtree(blocks)
    if node is None:
        return []
    chosen = _run_under(node, blocks)
    while _prose_chars(chosen) < THIN_BODY_CHARS and node.getparent() is not None:
        node = node.getparent()
        chosen = _run_under(node, blocks)
    return [b for b in chosen if b.link_density <= MAX_LINK_DENSITY]


def _run_under(node: etree._Element, blocks: list[Block]) -> list[Block]:
    """The densest run among the lines inside node."""
    inside = set(node.iter())
    return densest_run([b for b in blocks if b.owner in inside])


def run_weight(block: Block) -> float:
    """block_weight, but plain unpunctuated text (code, tables, verse, captions) costs little.

    What ends an article is links, furniture records and legal lines, not a table inside it.
    """
    if block.repeated or is_content(block) or block.link_density > MAX_LINK_DENSITY:
        return block_weight(block)
    if _BOILERPLATE.search(block.text) or _TEASER_END.search(block.text):
        return -TEXT_PENALTY * block.chars
    return -RUN_TEXT_PENALTY * block.chars


def _weights(blocks: list[Block]) -> list[float]:
    """run_weight per line, with repeated prose lines (carousel/mobile copies) counted once."""
    seen: set[str] = set()
    weights = []
    for block in blocks:
        weight = run_weight(block)
        if weight > 0 and block.text in seen:
            weight = 0.0
        seen.add(block.text)
        weights.append(weight)
    return weights


def densest_run(blocks: list[Block]) -> list[Block]:
    """The contiguous run of lines with the best content-minus-noise sum (maximum subarray).

    The best subtree of a short article often also holds what follows it (comments, teaser
    lists, share bars); those sit behind a stretch of noise lines, so the run stops before them.
    """
    best_sum, best = 0.0, (0, 0)
    run_sum, run_start = 0.0, 0
    for i, weight in enumerate(_weights(blocks)):
        if run_sum <= 0:
            run_sum, run_start = 0.0, i
        run_sum += weight
        if run_sum > best_sum:
            best_sum, best = run_sum, (run_start, i + 1)
    if best_sum <= 0:
        return _before_comments(blocks)
    end = best[1]
    while end < len(blocks) and end - best[1] < CLOSING_LINES and _is_closing_line(blocks[end]):
        end += 1
    return _before_comments(blocks[best[0]: end])


def _is_closing_line(block: Block) -> bool:
    """A short plain line right after the last paragraph: '（袁源）', '新京报记者 陆一夫', '（完）'."""
    return (block.chars <= META_LINE_MAX and not block.repeated and block.link_density <= MAX_LINK_DENSITY
            and bool(_CREDIT.search(block.text)) and not _BOILERPLATE.search(block.text)
            and not _TEASER_END.search(block.text) and not _CALL_TO_ACTION.search(block.text))


def _before_comments(run: list[Block]) -> list[Block]:
    """Cut the run where comment records begin, once an article stands before them.

    A long thread can outweigh its own toolbars; but comments never come before the article,
    so the first of several toolbar lines after enough prose is where the article ended.
    """
    left = sum(block.toolbar for block in run)
    prose = 0
    for i, block in enumerate(run):
        if block.toolbar:
            if left >= TEMPLATE_MIN_COUNT and prose >= THIN_BODY_CHARS:
                return run[:i]
            left -= 1
        elif is_content(block):
            prose += block.chars
    return run


# --------------------------------------------------------------------------- line clean-up

#: Whole lines that are page furniture, not article text.
_JUNK_LINE = re.compile(
    r"^[【\[(（]?\s*(责任编辑|责编|分享到|分享|上一篇|下一篇|上一页|下一页|打印本页|打印|关闭窗口|关闭|"
    r"扫一扫|扫描二维码|返回顶部|返回首页|收藏本文|收藏|发表评论|我要评论|字号|字体|【字体|点击排行|"
    r"相关阅读|相关新闻|相关报道|相关文章|相关链接|延伸阅读|推荐阅读|热点推荐|猜你喜欢|更多精彩|热门推荐|"
    r"编辑推荐|网友评论|举报|本文来源|来源|阅读|浏览|点击|文章关键词|关键词|关键字|标签|tags|"
    r"编辑|校对|责任校对|审核|审校|监制|统筹|出品|美编)"
    r"([\s:：】\]）)|/]|$)",
)
#: '原标题：…' / '（原题为《…》）': the headline the story had elsewhere, not its text.
_ORIGINAL_TITLE = re.compile(r"^[（(【\[]?\s*(本文)?原(标)?题(为|[:：])")
#: A label left dangling at the end of the body once its link list is gone ('点击进入专题：').
_DANGLING_LABEL = re.compile(r"^.{1,14}[:：]$")
#: Headings after which a page lists other articles: everything below is dropped.
_TAIL_HEADING = re.compile(
    r"^[【\[]?(相关阅读|相关新闻|相关报道|相关文章|相关链接|延伸阅读|推荐阅读|热点推荐|猜你喜欢|热门推荐|"
    r"更多精彩|精彩推荐|编辑推荐|网友评论|最新评论|热门评论|相关专题|相关推荐|为[你您]推荐|大家都在看|热门文章|最新文章|"
    r"热文推荐|[你您]?可能(还)?(感兴趣|喜欢|想看)的?(文章|内容|新闻)?|更多(新闻|文章|内容|报道))[】\]]?[:：]?$"
)
_PAGER = re.compile(r"第\s*\d+\s*页\s*/\s*共\s*\d+\s*页|<<\s*上一页|下一页\s*>>")
#: A call to action: promotion and app/account plugs, not reporting ('…→【下载地址】', '【点击投票】').
_CALL_TO_ACTION = re.compile(
    r"【\s*点击|→\s*【|点击(投票|下载|进入|查看更多|这里)|下载(地址|客户端|APP)|扫描?(下方|上方)?二维码|长按(识别)?二维码|"
    r"关注(我们|公众号|微信号)|请关注|扫码",
    re.I,
)
#: A longer line that mentions a link or a QR code is a paragraph, not a plug.
CALL_TO_ACTION_MAX = 100
#: A whole line of page links: '上一页 1/2 下一页', '1 2 下一页 余下全文', '【1】【2】【3】【4】'.
_PAGER_LINE = re.compile(
    r"^(?:[\s\d/|·…<>«»《》【】\[\]()（）-]|上一?页|下一?页|首页|尾页|末页|余下全文|阅读全文|查看全文|共\d+页)+$"
)
#: A byline opening the text ('执笔/叨叨姐、胡一刀', '【文/观察者网专栏作者 王文】'): not the first paragraph.
_BYLINE_START = re.compile(r"^[【\[(（]?\s*(文|作者|记者|执笔|撰文|撰稿|编译|整理|采写|口述)\s*[/｜|:：]")
_DATE_IN_LINE = re.compile(r"(19|20)\d\d\s*[-/.年]\s*\d{1,2}\s*[-/.月]\s*\d{1,2}")
_TIME_IN_LINE = re.compile(r"\d{1,2}[:：]\d\d")
_META_WORD = re.compile(r"来源|作者|编辑|发布|时间|日期|浏览|阅读|点击|更新|字号|评论|记者")
#: The first paragraph is at least this long; shorter content-like lines above it are header.
OPENING_MIN_CHARS = 15
#: Lines this short that mix a date with byline words are metadata rows, not prose.
META_LINE_MAX = 60


def is_meta_line(line: str) -> bool:
    """A short 'date + time/source/author' row such as '2005-04-05 06:40 来源：新华网'."""
    if len(line) > META_LINE_MAX or not _DATE_IN_LINE.search(line):
        return False
    return bool(_TIME_IN_LINE.search(line)) or len(set(_META_WORD.findall(line))) >= 2


def is_junk_line(line: str) -> bool:
    """Furniture lines: share/print/prev-next/related headings, pagers, date+source rows."""
    if len(line) > 120:
        return False
    if _JUNK_LINE.match(line) and len(line) <= 40:
        return True
    if _ORIGINAL_TITLE.match(line) or ("\ufffd" in line and not _WORDY.search(line)):
        return True  # a former headline; bytes that decoded to nothing (emoji in a broken charset)
    if _PAGER_LINE.match(line) and not line.strip().isdigit():
        return True
    if _CALL_TO_ACTION.search(line) and len(line) <= CALL_TO_ACTION_MAX:
        return True
    return bool(_PAGER.search(line) or _BOILERPLATE.search(line)) or is_meta_line(line)


def _tail_start(blocks: list[Block]) -> int:
    """Index of a 'related articles' heading followed by a non-prose line or a list item, else len."""
    total = sum(b.chars for b in blocks if is_content(b))
    before = 0
    for i, block in enumerate(blocks):
        if _TAIL_HEADING.match(_WS.sub("", block.text)) and before >= 0.5 * total:
            following = blocks[i + 1] if i + 1 < len(blocks) else None
            if following is None or not is_content(following) or following.owner.tag in ("li", "dd", "dt"):
                return i
        if is_content(block):
            before += block.chars
    return len(blocks)


def _opens_body(block: Block, title_key: str) -> bool:
    """Could this line be the article's first paragraph (not its headline)?"""
    if not is_content(block) or block.chars < OPENING_MIN_CHARS:
        return False
    if _BYLINE_START.match(block.text) and block.chars <= META_LINE_MAX:
        return False
    key = _WS.sub("", block.text)
    return key != title_key and not (title_key and key in title_key) and block.owner.tag not in ("h1", "h2", "h3")


def clean_lines(blocks: list[Block], title: str | None) -> list[str]:
    """Drop header lines before the first paragraph, furniture lines and trailing link-lists."""
    title_key = _WS.sub("", title or "")
    start = next((i for i, b in enumerate(blocks) if _opens_body(b, title_key)), len(blocks))
    end = _tail_start(blocks)
    lines = []
    for block in blocks[start:end]:
        if _WS.sub("", block.text) != title_key and not is_junk_line(block.text):
            lines.append(block.text)
    while lines and _DANGLING_LABEL.match(lines[-1]):
        lines.pop()
    return lines


# --------------------------------------------------------------------------- title

_TITLE_SEP = re.compile(r"\s*(?:_+|\|+|｜|丨|-{2,}| [-—–] | » |::|·{2,})\s*")
_TITLE_MIN, _TITLE_MAX = 2, 120


def _meta_map(root: etree._Element) -> dict[str, str]:
    """<meta name|property|itemprop=... content=...> as a lower-cased name -> first content."""
    found: dict[str, str] = {}
    for meta in root.iter("meta"):
        key = (meta.get("property") or meta.get("name") or meta.get("itemprop") or "").strip().lower()
        content = normalize_line(meta.get("content") or "")
        if key and content and key not in found:
            found[key] = content
    return found


def _element_text(el: etree._Element) -> str:
    """Visible text of an element, whitespace-normalised."""
    return normalize_line(el.text_content())


def page_headings(root: etree._Element) -> list[str]:
    """Likely headline holders, h1 first, then h2/h3 and elements whose class/id says 'title'."""
    found = [_element_text(el) for el in root.iter("h1")]
    found += [_element_text(el) for el in root.iter("h2", "h3")]
    for el in root.iter():
        if not isinstance(el.tag, str) or el.tag in ("html", "body", "title"):
            continue
        if "title" in f"{el.get('class') or ''} {el.get('id') or ''}".lower():
            found.append(_element_text(el))
    return [t for t in found if _TITLE_MIN <= len(t) <= _TITLE_MAX]


def clean_title_tag(title: str, headings: Sequence[str] = ()) -> str:
    """'文章标题_频道_新浪网' -> '文章标题': a part matching a heading, else the longest part."""
    parts = [p.strip() for p in _TITLE_SEP.split(title) if p.strip()]
    if not parts:
        return title.strip()
    keys = {_WS.sub("", h) for h in headings}
    matching = [p for p in parts if _WS.sub("", p) in keys]
    return matching[0] if matching else max(parts, key=len)


def extract_title(root: etree._Element, meta: dict[str, str], headings: list[str]) -> str | None:
    """Headline: a heading contained in <title> (not its site suffix), else og:title/<title> cleaned."""
    title_el = next(root.iter("title"), None)
    page_title = _element_text(title_el) if title_el is not None else ""
    squashed = _WS.sub("", page_title)

    def rank(heading: str) -> int:
        """Longer is better, but never the site name that ends the <title>."""
        key = _WS.sub("", heading)
        is_site_suffix = squashed.endswith(key) and len(key) < len(squashed)
        return len(key) - (1000 if is_site_suffix else 0)

    inside = [h for h in headings if _WS.sub("", h) in squashed]
    if inside:
        return max(inside, key=rank)
    for key in ("og:title", "twitter:title", "title", "headline"):
        if meta.get(key):
            return clean_title_tag(meta[key], headings)
    if page_title:
        return clean_title_tag(page_title, headings)
    return headings[0] if headings else None


def refine_title(title: str | None, headings: list[str], before_body: list[str]) -> str | None:
    """If the chosen title is not shown above the body but a heading is, take that heading."""
    lines = {_WS.sub("", line) for line in before_body}
    key = _WS.sub("", title or "")
    if key and any(key in line or (len(line) >= _TITLE_MIN * 2 and line in key) for line in lines):
        return title
    shown = [h for h in headings if _WS.sub("", h) in lines]
    return shown[-1] if shown else title


# --------------------------------------------------------------------------- published time

_DATE_RE = re.compile(
    r"(?P<y>(?:19|20)\d\d)\s*(?P<sep>[-/.年])\s*(?P<m>\d{1,2})\s*[-/.月]\s*(?P<d>\d{1,2})(?!\d)\s*日?"
    r"(?:\s*(?:T|\s)?\s*(?P<H>\d{1,2})\s*[:：时]\s*(?P<M>\d{2})(?:\s*[:：分]\s*(?P<S>\d{2}))?)?"
)
_US_DATE_RE = re.compile(
    r"(?<!\d)(?P<m>\d{1,2})/(?P<d>\d{1,2})/(?P<y>(?:19|20)\d\d)"
    r"(?:\s+(?P<H>\d{1,2}):(?P<M>\d{2})(?::(?P<S>\d{2}))?\s*(?P<ampm>[AaPp][Mm])?)?"
)
_DATE_LABEL = re.compile(r"(发布|发表|更新|上传|刊发|成文|出版)?(时间|日期)\s*[:：]?\s*$|(发表|发布)于\s*$|published\s*:?\s*$",
                         re.I)
_ISO_RE = re.compile(
    r"(?P<y>\d{4})-(?P<m>\d{1,2})-(?P<d>\d{1,2})(?:[T\s](?P<H>\d{1,2}):(?P<M>\d{2})(?::(?P<S>\d{2}))?"
    r"(?:\.\d+)?\s*(?P<tz>Z|[+-]\d{2}:?\d{2})?)?"
)
_DATE_META_KEYS = (
    "article:published_time", "og:article:published_time", "published_time", "publishdate", "publish_date",
    "pubdate", "publication_date", "datepublished", "dc.date.issued", "dc.date", "dcterms.created",
    "citation_publication_date", "citation_date", "prism.publicationdate", "sailthru.date",
    "parsely-pub-date", "og:release_date", "weibo:article:create_at", "firstpublishedtime",
)
EARLIEST_YEAR = 1990


def _plausible(dt: datetime) -> bool:
    """Reject years before the web and dates in the future."""
    now = datetime.now(dt.tzinfo) if dt.tzinfo else datetime.now()
    return dt.year >= EARLIEST_YEAR and dt <= now + timedelta(days=2)


def _build(y: str, m: str, d: str, hh: str | None, mm: str | None, ss: str | None) -> datetime | None:
    """datetime from regex groups, or None when out of range."""
    try:
        dt = datetime(int(y), int(m), int(d), int(hh or 0), int(mm or 0), int(ss or 0))
    except ValueError:
        return None
    return dt if _plausible(dt) else None


def parse_date_text(text: str) -> tuple[datetime, int] | None:
    """First Chinese/ISO/US-style date(-time) in text and where it starts."""
    match = _DATE_RE.search(text)
    if match:
        g = match.groupdict()
        dt = _build(g["y"], g["m"], g["d"], g["H"], g["M"], g["S"])
        if dt is not None:
            return dt, match.start()
    match = _US_DATE_RE.search(text)
    if match:
        g = match.groupdict()
        hour = int(g["H"] or 0)
        if g["ampm"] and g["ampm"].lower() == "pm" and hour < 12:
            hour += 12
        dt = _build(g["y"], g["m"], g["d"], str(hour), g["M"], g["S"])
        if dt is not None:
            return dt, match.start()
    return None


def parse_iso(value: str) -> datetime | None:
    """ISO-8601-ish meta values; aware only when an offset is given."""
    match = _ISO_RE.search(value)
    if not match:
        found = parse_date_text(value)
        return found[0] if found else None
    g = match.groupdict()
    dt = _build(g["y"], g["m"], g["d"], g["H"], g["M"], g["S"])
    if dt is None or not g["tz"]:
        return dt
    tz = g["tz"].replace(":", "")
    if tz == "Z":
        return dt.replace(tzinfo=UTC)
    offset = timedelta(hours=int(tz[1:3]), minutes=int(tz[3:5]))
    return dt.replace(tzinfo=timezone(offset if tz[0] == "+" else -offset))


def _meta_date(root: etree._Element, meta: dict[str, str]) -> datetime | None:
    """Publish time from <meta>, JSON-LD datePublished or <time datetime>."""
    for key in _DATE_META_KEYS:
        if key in meta:
            dt = parse_iso(meta[key])
            if dt is not None:
                return dt
    for script in root.iter("script"):
        if (script.get("type") or "").lower() == "application/ld+json" and script.text:
            match = re.search(r'"datePublished"\s*:\s*"([^"]+)"', script.text)
            dt = parse_iso(match.group(1)) if match else None
            if dt is not None:
                return dt
    for el in root.iter("time"):
        dt = parse_iso(el.get("datetime") or "") if el.get("datetime") else None
        if dt is not None:
            return dt
    return None


def _line_dates(lines: list[str]) -> tuple[datetime | None, datetime | None]:
    """(first labelled date such as '发布时间：…', first date at all) among lines."""
    labelled = first = None
    previous = ""
    for line in lines:
        found = parse_date_text(line)
        if found is not None:
            dt, pos = found
            first = first or dt
            label_zone = line[:pos][-12:] if pos else previous[-12:]
            if labelled is None and _DATE_LABEL.search(label_zone):
                labelled = dt
        previous = line
    return labelled, first


def extract_date(meta_dt: datetime | None, zones: Zones) -> datetime | None:
    """Date shown by the title (labelled first), then a meta date, then one after the body."""
    labelled, first = _line_dates(zones.before + zones.start[:1])
    if labelled is not None or first is not None:
        return labelled or first
    if meta_dt is not None:
        return meta_dt
    labelled, first = _line_dates(zones.end + zones.after)
    return labelled or first


# --------------------------------------------------------------------------- author

_NAME_RE = re.compile(
    r"(?:[\u4e00-\u9fa5]{1,4}·)?[\u4e00-\u9fa5]{2,4}(?:\s*[（(][A-Za-z][A-Za-z .\-]*[)）])?"
    r"|[A-Za-z][A-Za-z0-9_.\-]{1,30}"
)
#: What sites write in the author slot when there is no author.
_PLACEHOLDER_NAMES = frozenset("未知 网络 佚名 匿名 本站 管理员 小编 admin unknown 综合 互联网 网友".split())
#: Characters that may follow a name in a byline (anything else means it was prose).
_AFTER_NAME = frozenset("）)】]、/／|｜;；")
_NAME_SEP = re.compile(r"[\s、，,/／;；]*")
#: Words that end a byline: the next field's label, or a dateline such as '上海报道'.
_NAME_STOP = re.compile(
    r"来源|编辑|责编|报道|摄影|摄|发布|时间|日期|记者|通讯员|实习生|阅读|评论|点击|浏览|字号|简介|出处|转载|原创|"
    r"电讯|综合|整合|编译|整理|校对|审核|监制|分享|收藏|打印|作者|本报|本台|本刊|新华社|中新社|图片|图文|视频|更多|关注|粉丝"
)
_BYLINE = re.compile(r"(?:作者|撰文|撰稿|执笔人?|(?:^|[\s（(【\[])文)\s*[:：/｜|]\s*")
_REPORTER = re.compile(r"(?:记者|实习生|通讯员|撰稿人)\s*[:：]?\s*")
_EDITOR = re.compile(r"(?:责任编辑|责编|编辑)\s*[:：]\s*")
_PAREN_TAIL = re.compile(r"[（(]\s*(?:[^（()）]{0,12}?(?:记者|通讯员)\s*)?(?P<names>[^（()）]{2,30}?)\s*[）)]\s*$")
_ORG_WORDS = re.compile(
    r"网|公司|出版|报社|日报|晚报|早报|时报|集团|中心|编辑部|新闻|财经|自媒体|综合|频道|委员会|政府|有限|"
    r"\.(com|cn|net|org)|http|www|publisher|\d|^(未知|佚名|匿名|本站|管理员|admin|小编|unknown)$",
    re.I,
)


def _name_token(text: str, pos: int, first: bool) -> tuple[str | None, bool]:
    """(name at pos or None, whether the byline goes on after it)."""
    match = _NAME_RE.match(text, pos)
    if not match or any(ch.isdigit() for ch in match.group(0)):
        return None, False  # nothing name-like, or an id/code such as 'PK155'
    token, end = match.group(0), match.end()
    stop = _NAME_STOP.search(token)
    if stop:  # '张三来源：…' -> '张三' (only right after the label)
        token = token[: stop.start()] if first and stop.start() >= 2 else ""
        more = False
    elif end < len(text) and not (text[end].isspace() or text[end] in _AFTER_NAME):
        return None, False  # a label ('个人简介：'), an attribute ('size="20"') or prose
    else:
        more = True
    if not token or token.lower() in _PLACEHOLDER_NAMES:
        return None, False  # '作者：未知' means no author
    return normalize_line(token), more


def _take_names(text: str) -> list[str]:
    """Person names at the start of text, separated by spaces/顿号, until another field begins."""
    names: list[str] = []
    pos = 0
    while len(names) < 8:
        sep = _NAME_SEP.match(text, pos)
        assert sep is not None  # it matches the empty string too
        pos = sep.end()
        name, more = _name_token(text, pos, not names)
        if name is None:
            break
        names.append(name)
        if not more:
            break
        token = _NAME_RE.match(text, pos)
        assert token is not None  # _name_token found the name here
        pos = token.end()
    return names


def _join_single_chars(name: str) -> str:
    """'赵 培' (spaced for layout) -> '赵培'."""
    return re.sub(r"(?<=[\u4e00-\u9fa5]) (?=[\u4e00-\u9fa5](?:\s|$))", "", name) if len(name) <= 5 else name


def _names_after(pattern: re.Pattern[str], lines: list[str]) -> list[str]:
    """Names following every match of a label pattern over the given lines, de-duplicated."""
    names: list[str] = []
    for line in lines:
        for match in pattern.finditer(line):
            names += [n for n in _take_names(line[match.end():]) if n not in names]
    return names


def _meta_author(meta: dict[str, str]) -> str | None:
    """A person-looking author from <meta>, not a site or publisher name."""
    for key in ("author", "article:author", "citation_author", "citation_authors", "dc.creator", "byl"):
        value = meta.get(key, "")
        if value and not _ORG_WORDS.search(value) and len(value) <= 40:
            return _join_single_chars(normalize_line(value.replace(";", " ")))
    return None


def _paren_tail_names(lines: list[str]) -> list[str]:
    """Names in a closing '（记者 张三 李四）' / '（袁源）' at the end of the article."""
    for line in reversed(lines[-3:]):
        match = _PAREN_TAIL.search(line)
        lead = line[: match.start()].rstrip() if match else ""
        if match and (not lead or lead[-1] in "。！？!?”\"…"):
            names = _take_names(match.group("names"))
            if names:
                return names
    return []


def extract_author(meta: dict[str, str], zones: Zones) -> str | None:
    """Byline ('作者：', '记者 …', closing '（…）') nearest the article, else meta, else '编辑：'."""
    candidates = (
        lambda: _names_after(_BYLINE, zones.head) or _names_after(_REPORTER, zones.head),
        lambda: _names_after(_BYLINE, zones.end) or _names_after(_REPORTER, zones.end) or _paren_tail_names(zones.end),
        lambda: _names_after(_BYLINE, zones.after) or _names_after(_REPORTER, zones.after),
        lambda: [_meta_author(meta) or ""],
        lambda: _names_after(_EDITOR, zones.end + zones.after + zones.head),
    )
    for find in candidates:
        names = [n for n in find() if n]
        if names:
            return " ".join(names)
    return None


# --------------------------------------------------------------------------- body choice

#: Below this many characters the density result is treated as a miss and trafilatura is asked.
MIN_BODY_CHARS = 40


def tidy_text(text: str, title: str | None) -> str:
    """Normalise another extractor's output like ours: one clean line per paragraph, no furniture."""
    title_key = _WS.sub("", title or "")
    lines = []
    for raw in text.splitlines():
        line = normalize_line(raw)
        if line and _WS.sub("", line) != title_key and not is_junk_line(line):
            lines.append(line)
    return "\n".join(lines)


def trafilatura_text(html_text: str) -> str:
    """trafilatura's body text (recall-leaning, tables kept, comments dropped); '' on failure."""
    import trafilatura

    try:
        out = trafilatura.extract(
            html_text, include_comments=False, include_tables=True, include_images=False,
            deduplicate=False, with_metadata=False,
        )
    except Exception:
        log.warning("trafilatura failed", exc_info=True)
        return ""
    return out or ""


def choose_body(density: str, html_text: str, title: str | None = None) -> str:
    """The density result, or trafilatura's when ours is (nearly) empty.

    trafilatura is not asked to overrule a real result: on pages with comments or teaser lists
    it returns those as readily as the article, and the widening in density_blocks already
    covers a thin first choice.
    """
    if _visible_len(density) >= MIN_BODY_CHARS:
        return density
    traf = tidy_text(trafilatura_text(html_text), title)
    return traf if _visible_len(traf) > _visible_len(density) else density


# --------------------------------------------------------------------------- entry point


def _index_of(blocks: list[Block], line: str, default: int) -> int:
    """Position of the block with exactly this text, or default."""
    return next((i for i, b in enumerate(blocks) if b.text == line), default)


@dataclass(frozen=True)
class Zones:
    """Where bylines and dates live: around the title and body start, body end, after body."""

    before: list[str]
    start: list[str]
    end: list[str]
    after: list[str]

    @property
    def head(self) -> list[str]:
        """Lines above the body plus its first lines (bylines often open the text)."""
        return self.before + self.start


#: Lines taken from each zone.
HEAD_LINES, BODY_EDGE_LINES, AFTER_LINES = 20, 6, 8


def find_zones(all_blocks: list[Block], body: list[str], title: str | None) -> Zones:
    """Lines from the title down to the body's start, the body's last lines, and what follows."""
    first_content = next((i for i, b in enumerate(all_blocks) if is_content(b)), len(all_blocks))
    start = _index_of(all_blocks, body[0], first_content) if body else first_content
    last = len(all_blocks) - 1 - _index_of(all_blocks[::-1], body[-1], len(all_blocks) - 1 - start) if body else start
    title_key = _WS.sub("", title or "")
    title_at = next(
        (i for i in range(start - 1, -1, -1) if title_key and title_key in _WS.sub("", all_blocks[i].text)), None
    )
    lo = max(0, start - HEAD_LINES // 2) if title_at is None else max(title_at, start - HEAD_LINES)
    return Zones(
        before=[b.text for b in all_blocks[lo:start]],
        start=body[:BODY_EDGE_LINES],
        end=body[-BODY_EDGE_LINES:],
        after=[b.text for b in all_blocks[last + 1: last + 1 + AFTER_LINES]],
    )


def _decode(body: bytes | str, declared_encoding: str | None) -> str:
    """Page text from bytes (capped at MAX_BYTES, decoded without mojibake) or text."""
    if isinstance(body, bytes):
        return decode_html(body[:MAX_BYTES], declared_encoding)[0]
    return body[:MAX_BYTES]


def _extract(body: bytes | str, declared_encoding: str | None) -> Article:
    """The extraction pipeline proper; may raise on pathological input."""
    html_text = _decode(body, declared_encoding)
    root = parse_html(html_text)
    if root is None:
        return EMPTY
    meta = _meta_map(root)  # metadata first: cleaning drops <head>, <script> and <time> context
    headings = page_headings(root)
    title = extract_title(root, meta, headings)
    meta_dt = _meta_date(root, meta)
    strip_noise(root)
    all_blocks = text_blocks(root)
    if not all_blocks:
        return Article(title=title, author=None, published_at=meta_dt, text="")
    strip_chrome(root)
    blocks = density_blocks(root)
    text = choose_body("\n".join(clean_lines(blocks, title)), sanitize_html(html_text), title)
    zones = find_zones(all_blocks, [ln for ln in text.split("\n") if ln.strip()], title)
    return Article(
        title=refine_title(title, headings, zones.before),
        author=extract_author(meta, zones),
        published_at=extract_date(meta_dt, zones),
        text=text,
    )


def extract_article(
    body: bytes | str, url: str | None = None, declared_encoding: str | None = None
) -> Article:
    """Extract an article from raw page bytes (any encoding) or text; never raises."""
    if not body:
        return EMPTY
    try:
        return _extract(body, declared_encoding)
    except Exception:
        log.warning("extraction failed for %s", url or "<page>", exc_info=True)
        return EMPTY
