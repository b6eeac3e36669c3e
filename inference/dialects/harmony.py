"""gpt-oss's Harmony format: a python call is an analysis message addressed `to=python`, ending in <|call|>.

Rendering and parsing use `openai_harmony` (the `oss-harmony` package vLLM depends on; it embeds its
vocabulary, so it works offline). The tool reply is appended in token space after the tokens the model
actually sampled: re-rendering the conversation would rewrite the call's header differently from what
the model wrote, and break the prefix cache from there on.
"""

from __future__ import annotations

from openai_harmony import (
    Author,
    Conversation,
    HarmonyEncodingName,
    Message,
    ReasoningEffort,
    Role,
    SystemContent,
    TextContent,
    ToolNamespaceConfig,
    load_harmony_encoding,
)

from .base import Dialect, Turn

PYTHON_DESCRIPTION = (
    "Use this tool to execute Python code. The code runs in a stateful Jupyter notebook with sympy, mpmath and "
    "numpy available; print() what you need to see. It times out after {timeout} seconds."
)
EFFORTS = {"low": ReasoningEffort.LOW, "medium": ReasoningEffort.MEDIUM, "high": ReasoningEffort.HIGH}


class HarmonyDialect(Dialect):
    name = "harmony"

    def __init__(self, reasoning_effort: str = "high", tool_timeout_s: float = 10.0,
                 instructions: str = "Put the final answer, an integer, inside \\boxed{}.",
                 model_identity: str | None = None, tool_description: str | None = None) -> None:
        """`instructions` follow the problem in the user message (none when empty); `model_identity` is the
        system message's identity line (Harmony's default when None); `tool_description` the python tool's
        description, with {timeout} (PYTHON_DESCRIPTION when None)."""
        self.encoding = load_harmony_encoding(HarmonyEncodingName.HARMONY_GPT_OSS)
        # <|return|>, <|call|>; sorted: openai_harmony returns them in an order that varies from run to run
        self.stop_token_ids = tuple(sorted(self.encoding.stop_tokens_for_assistant_actions()))
        self.call_token = self.encoding.encode("<|call|>", allowed_special="all")[0]
        self.reasoning_effort = EFFORTS[reasoning_effort]
        self.tool_timeout_s = tool_timeout_s
        self.instructions = instructions
        self.model_identity = model_identity
        self.tool_description = PYTHON_DESCRIPTION if tool_description is None else tool_description
        self.assistant_start = self.encoding.render_conversation_for_completion(
            Conversation.from_messages([]), Role.ASSISTANT)  # <|start|>assistant

    def prompt_ids(self, problem: str) -> list[int]:
        tool = ToolNamespaceConfig(name="python", description=self.tool_description.format(
            timeout=self.tool_timeout_s), tools=[])
        system = SystemContent.new()
        if self.model_identity is not None:
            system = system.with_model_identity(self.model_identity)
        system = system.with_reasoning_effort(self.reasoning_effort).with_tools(tool)
        user = f"{problem}\n\n{self.instructions}" if self.instructions else problem
        conversation = Conversation.from_messages([
            Message.from_role_and_content(Role.SYSTEM, system),
            Message.from_role_and_content(Role.USER, user),
        ])
        return list(self.encoding.render_conversation_for_completion(conversation, Role.ASSISTANT))

    def _messages(self, token_ids: list[int]) -> list[Message]:
        try:
            return self.encoding.parse_messages_from_completion_tokens(token_ids, Role.ASSISTANT, strict=False)
        except Exception:  # noqa: BLE001 - a malformed generation is a turn without a call, not a crash
            return []

    def code_of(self, turn: Turn) -> str | None:
        if not turn.token_ids or turn.token_ids[-1] != self.call_token:
            return None
        messages = self._messages(turn.token_ids)
        if not messages or not (messages[-1].recipient or "").startswith("python"):
            return None
        return "".join(part.text for part in messages[-1].content if hasattr(part, "text")) or None

    def continuation_ids(self, turn: Turn, output: str, calls_left: int | None) -> list[int]:
        reply = Message(author=Author(role=Role.TOOL, name="python"), content=[TextContent(text=output)])
        reply = reply.with_recipient("assistant").with_channel("analysis")
        # <|call|> is a stop token: vLLM keeps it in token_ids, and nothing overshoots a token stop.
        return list(turn.token_ids) + list(self.encoding.render(reply)) + list(self.assistant_start)

    def decode(self, token_ids: list[int]) -> str:
        return self.encoding.decode_utf8(token_ids)

    def answer_text(self, turns: list[Turn]) -> str:
        """The final channel if the model reached it, else everything it wrote."""
        # Each turn is a completion of its own (it starts after <|start|>assistant): parse them one by one.
        finals = [m for turn in turns for m in self._messages(turn.token_ids) if m.channel == "final"]
        if finals:
            return "".join(part.text for m in finals for part in m.content if hasattr(part, "text"))
        return super().answer_text(turns)
