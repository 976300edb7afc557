from .checkpoint_state import PortableCheckpointHook, from_plain, to_plain

__all__ = ['PortableCheckpointHook', 'from_plain', 'to_plain']
