"""lightspan.converters"""
