"""lightspan.collector"""
