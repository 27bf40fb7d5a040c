// Asio is compiled once, here (BOOST_ASIO_SEPARATE_COMPILATION is set for the whole project).
#include <boost/asio/impl/src.hpp>
