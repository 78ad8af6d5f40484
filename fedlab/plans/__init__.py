"""Plans: functions (and ``nn.Module`` classes) traced once and run on a worker in one message."""

from fedlab.plans.plan import Plan, PointerPlan, State, func2plan

__all__ = ["Plan", "PointerPlan", "State", "func2plan"]
