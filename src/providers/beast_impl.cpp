// Beast and Asio's SSL layer are compiled once, here: BOOST_BEAST_SEPARATE_COMPILATION and
// BOOST_ASIO_SEPARATE_COMPILATION are set for the whole project (Asio's core is compiled in
// src/core/asio_impl.cpp). Every other TU only sees declarations, which keeps builds fast.
#include <boost/asio/ssl/impl/src.hpp>
#include <boost/beast/src.hpp>
