"""The emotion service (aiohttp) and its async client."""
