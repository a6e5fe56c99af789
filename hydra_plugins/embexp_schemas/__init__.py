"""Registers embexp's config schemas (``schema/<group>/<name>``) in Hydra's ConfigStore.

Hydra imports every module under ``hydra_plugins`` when it starts, before it composes, so
``embexp-*`` entry points and ``hydra.compose`` see the schemas that ``conf/<group>/*.yaml``
name in their defaults lists. Light on purpose: only the dataclasses and omegaconf.
"""

from embexp.config.store import register

register()
