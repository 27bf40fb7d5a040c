// Everything the library offers, in one include: the seed's cached_agent_run and its options,
// typed outputs, costs, cache keys and errors. Each header below also stands on its own.
#pragma once

#include "llm_caching/agent.hpp"
#include "llm_caching/budget.hpp"
#include "llm_caching/cache_key.hpp"
#include "llm_caching/cache_mode.hpp"
#include "llm_caching/cache_options.hpp"
#include "llm_caching/costs.hpp"
#include "llm_caching/embed.hpp"
#include "llm_caching/errors.hpp"
#include "llm_caching/expense.hpp"
#include "llm_caching/history.hpp"
#include "llm_caching/http_call.hpp"
#include "llm_caching/messages.hpp"
#include "llm_caching/model.hpp"
#include "llm_caching/runtime.hpp"
#include "llm_caching/typed_output.hpp"
#include "llm_caching/usage.hpp"
