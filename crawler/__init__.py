"""The crawler stage: Scrapy spiders, item pipelines and extensions, and the long-lived crawl worker."""

# A log record attribute marking a line that only says a poll found nothing new: the crawl worker drops
# those lines (a feed polled every 30 s would otherwise fill the log). Here, not in a module that imports
# Scrapy, because the worker reads it before it installs its reactor.
UNCHANGED = "yuqing_unchanged"
